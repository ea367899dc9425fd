"""The command line: import (resumable, skips duplicates) and reindex (rebuild from the record)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auth.access import Principal
from crossdoc.settings import Settings
from crossdoc.wiring.api import build_services
from indexer.index.base import SearchRequest
from indexer.query import parse_user_query
from services.bootstrap import bootstrap
from services.search import search_documents
from storage.catalog.records import AuditFilter
from tests.conftest import fast_passwords

pytestmark = pytest.mark.embedded_only(
    "it runs `crossdoc import` and `crossdoc reindex` on an embedded data directory it fills and "
    "copies itself; it starts no API server"
)


def crossdoc(
    data_dir: Path, *args: str, engines: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command on `data_dir`, and on `engines` (a full-stack server's `engine_env`)."""
    env = dict(
        os.environ,
        CROSSDOC_DATA_DIR=str(data_dir),
        CROSSDOC_DEMO="true",
        CROSSDOC_ADMIN_PASSWORD="admin-password-for-tests",
        **(engines or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    services = build_services(Settings(data_dir=data), passwords=fast_passwords())
    bootstrap(
        services.catalog,
        services.passwords.hash,
        admin_password="admin-password-for-tests",
        demo=True,
    )
    services.close()
    return data


def search(data_dir: Path, username: str, q: str) -> set[str]:
    services = build_services(Settings(data_dir=data_dir))
    try:
        user = services.catalog.organisation.get_user(username)
        assert user is not None
        principal = Principal(user.username, user.department, user.ministry, frozenset(user.roles))
        results = search_documents(
            services.catalog.documents,
            services.index,
            principal,
            SearchRequest(parse_user_query(q), limit=100),
        )
        return {h.filename for h in results.hits}
    finally:
        services.close()


def make_tree(root: Path) -> Path:
    (root / "2024" / "예산").mkdir(parents=True)
    (root / "2024" / "예산" / "편성안.txt").write_text("내년도 예산 편성안 초안", encoding="utf-8")
    (root / "2024" / "회의록.txt").write_text("주간 회의록: 기록물 이관 일정", encoding="utf-8")
    (root / "copy-of-회의록.txt").write_text("주간 회의록: 기록물 이관 일정", encoding="utf-8")
    (root / "scan.bin").write_bytes(b"\x00\x01binary")
    return root


def test_import_then_search_then_resume(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "old-drive")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC")
    assert r.returncode == 0, r.stderr
    assert "imported 3, skipped 1" in r.stderr  # the copy has the same bytes
    assert search(data_dir, "lee.jiyoung", "편성안") == {"편성안.txt"}
    found = search(data_dir, "lee.jiyoung", "회의록")  # one of the two identical files
    assert len(found) == 1
    assert next(iter(found)).endswith("회의록.txt")
    assert search(data_dir, "park.seojun", "편성안") == set()  # another ministry
    (tree / "new.txt").write_text("새로 추가된 공문", encoding="utf-8")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC")
    assert r.returncode == 0, r.stderr
    assert "imported 1, skipped 4" in r.stderr


def test_import_keeps_the_source_folders(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "old-drive")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC", "--no-index")
    assert r.returncode == 0, r.stderr
    (tree / "2024" / "예산" / "추경.txt").write_text("추가경정 예산", encoding="utf-8")
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC", "--no-index")
    assert r.returncode == 0, r.stderr  # resumed: the folders are found again, not doubled
    services = build_services(Settings(data_dir=data_dir))
    try:
        folders = services.catalog.folders
        tree_ = folders.tree("MOIS-REC")
        names = {f.id: f.name for f in tree_}
        paths = sorted("/".join(names[a] for a in f.ancestry) for f in tree_)
        assert paths == ["2024", "2024/예산"]
        filed = {
            d.filename: "/".join(names[a] for a in d.folder_path)
            for ids in services.catalog.documents.all_ids()
            for d in services.catalog.documents.get_many(ids)
        }
        assert filed == {
            "편성안.txt": "2024/예산",
            "추경.txt": "2024/예산",
            "copy-of-회의록.txt": "",  # 2024/회의록.txt has the same bytes: skipped
            "scan.bin": "",
        }
        created = services.catalog.audit.page(AuditFilter(action="folder_create"))
        assert {e.actor for e in created} == {"@import"} and len(created) == 2
    finally:
        services.close()


def test_import_refuses_unknown_department(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d")
    r = crossdoc(data_dir, "import", str(tree), "--department", "NOPE")
    assert r.returncode == 2
    assert "no department" in r.stderr


def test_reindex_rebuilds_a_lost_index(data_dir: Path, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "old-drive")
    assert (
        crossdoc(
            data_dir, "import", str(tree), "--department", "MOIS-REC", "--visibility", "government"
        ).returncode
        == 0
    )
    before = search(data_dir, "park.seojun", "기록물")
    assert len(before) == 1

    shutil.rmtree(data_dir / "index")  # the index is derived data: lose it
    assert search(data_dir, "park.seojun", "기록물") == set()
    r = crossdoc(data_dir, "reindex")
    assert r.returncode == 0, r.stderr
    assert "index holds 3 documents" in r.stderr
    assert search(data_dir, "park.seojun", "기록물") == before


def test_worker_without_broker_explains(data_dir: Path) -> None:
    r = crossdoc(data_dir, "worker")
    assert r.returncode == 2
    assert "CROSSDOC_BROKER_URL" in r.stderr


def test_import_while_indexing_loses_no_document(data_dir: Path, tmp_path: Path) -> None:
    # Import and indexing run side by side; every accepted file must end indexed.
    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(400):
        (tree / f"공문{i:04d}.txt").write_text(
            f"기록물 {i}번 이관 공문 {i * 7919}", encoding="utf-8"
        )
    r = crossdoc(data_dir, "import", str(tree), "--department", "MOIS-REC")
    assert r.returncode == 0, r.stderr
    services = build_services(Settings(data_dir=data_dir))
    try:
        assert services.catalog.outbox.backlog() == 0
        statuses = {
            d.status
            for ids in services.catalog.documents.all_ids()
            for d in services.catalog.documents.get_many(ids)
        }
        assert statuses == {"indexed"}
        assert services.index.count() == services.catalog.documents.count() == 400
    finally:
        services.close()


def test_an_index_of_an_older_schema_is_rebuilt_from_the_record(
    data_dir: Path, tmp_path: Path
) -> None:
    import tantivy

    tree = make_tree(tmp_path / "old-drive")
    r = crossdoc(
        data_dir, "import", str(tree), "--department", "MOIS-REC", "--visibility", "government"
    )
    assert r.returncode == 0, r.stderr
    before = search(data_dir, "park.seojun", "기록물")
    assert len(before) == 1
    # An index written by an older release: another schema (e.g. without the
    # compound fallback's grams field).
    shutil.rmtree(data_dir / "index")
    (data_dir / "index").mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True)
    old = tantivy.Index(builder.build(), str(data_dir / "index"), reuse=True)
    writer = old.writer(15_000_000, 1)
    writer.commit()
    writer.wait_merging_threads()
    del writer, old

    services = build_services(Settings(data_dir=data_dir))
    try:
        assert services.index.count() == 0
        assert services.catalog.outbox.backlog() == 3  # every document queued again
    finally:
        services.close()
    r = crossdoc(data_dir, "reindex")
    assert r.returncode == 0, r.stderr
    assert search(data_dir, "park.seojun", "기록물") == before
