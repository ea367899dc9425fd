"""`crossdoc import` names what it skipped, and beside a running server hands it the indexing.

The report (JSON Lines, path printed at the end) has one row a file not
imported: its source path, why (`already_stored`, `same_as_imported_file`,
`unreadable`) and the document that holds its bytes. Beside a running server
the import stores and queues, says plainly that the server indexes, and the
server does; `crossdoc status` shows what is left.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_cli import crossdoc, data_dir, make_tree
from tests.conftest import Server, start_server

__all__ = ["data_dir"]  # the fixture, used here


def report_rows(stderr: str) -> tuple[Path, list[dict[str, Any]]]:
    found = re.search(r"report of the (\d+) files not imported: (.+)$", stderr, re.MULTILINE)
    assert found, stderr
    path = Path(found.group(2).strip())
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == int(found.group(1))
    return path, rows


def test_the_report_names_every_file_skipped_and_why(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC", "--no-index")
    assert r.returncode == 0, r.stderr
    assert "imported 3, skipped 1" in r.stderr
    path, rows = report_rows(r.stderr)
    assert path.parent == data_dir / "import-reports"
    # The walk takes a folder's files before its sub-folders: the copy at the top
    # is imported, `2024/회의록.txt` (the same bytes) is skipped.
    assert rows == [
        {
            "path": str(tree / "2024" / "회의록.txt"),
            "reason": "same_as_imported_file",
            "document_id": rows[0]["document_id"],
            "same_as": str(tree / "copy-of-회의록.txt"),
        }
    ]
    assert len(rows[0]["document_id"]) == 32

    (tree / "새 문서.txt").write_text("새로 추가한 문서", encoding="utf-8")
    own = tmp_path / "second.jsonl"
    r = crossdoc(
        data_dir,
        "import",
        str(tree),
        "--department",
        "MOIS-REC",
        "--no-index",
        "--report",
        str(own),
    )
    assert r.returncode == 0, r.stderr
    assert "imported 1, skipped 4" in r.stderr
    path, rows = report_rows(r.stderr)
    assert path == own
    by_path = {row["path"]: row for row in rows}
    assert set(by_path) == {
        str(tree / "2024" / "예산" / "편성안.txt"),
        str(tree / "2024" / "회의록.txt"),
        str(tree / "copy-of-회의록.txt"),
        str(tree / "scan.bin"),
    }
    assert {row["reason"] for row in rows} == {"already_stored"}
    # Both copies name the one document holding their bytes.
    assert (
        by_path[str(tree / "2024" / "회의록.txt")]["document_id"]
        == by_path[str(tree / "copy-of-회의록.txt")]["document_id"]
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path / "served")


def test_import_beside_a_running_server_hands_it_the_indexing(
    running: Server, tmp_path: Path
) -> None:
    data = running.services.settings.data_dir
    user = running.user("importer.kim", "MOIS-IMP", ministry="MOIS")
    tree = make_tree(tmp_path / "tree")
    # On the full stack the command is given the server's engines (its catalog is
    # PostgreSQL, its originals in S3): it must find the same catalog.
    engines = running.engine_env
    r = crossdoc(data, "import", str(tree), "--department", "MOIS-IMP", engines=engines)
    assert r.returncode == 0, r.stderr
    assert "imported 3, skipped 1" in r.stderr
    assert "the running server indexes them" in r.stderr, r.stderr
    assert "crossdoc status" in r.stderr
    assert "LockBusy" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    # The server's worker indexes what the import queued.
    deadline = time.monotonic() + 60
    while running.services.catalog.outbox.backlog():
        assert time.monotonic() < deadline, "the server did not index the import"
        time.sleep(0.2)
    hits = running.search(user, q="편성안")["hits"]
    assert [h["filename"] for h in hits] == ["편성안.txt"]

    status = crossdoc(data, "status", engines=engines)
    assert status.returncode == 0, status.stderr
    assert "waiting to be indexed: 0" in status.stdout, status.stdout
    assert "indexed 3 of which 1 without text" in status.stdout, status.stdout
    assert re.search(r"indexers: pid \d+ on ", status.stdout), status.stdout


def test_status_wait_refuses_when_nothing_indexes(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC", "--no-index")
    assert r.returncode == 0, r.stderr
    status = crossdoc(data_dir, "status", "--wait")
    assert "waiting to be indexed: 3" in status.stdout, status.stdout
    assert "indexers: none running" in status.stdout
    assert status.returncode == 1 and "crossdoc serve" in status.stderr
