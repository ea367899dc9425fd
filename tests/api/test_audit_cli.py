"""`crossdoc audit verify` and `crossdoc audit export`, against a catalog tampered with directly."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.core import build_catalog
from storage.catalog.records import NewAuditEvent

pytestmark = pytest.mark.embedded_only(
    "it tampers with the SQLite catalog file directly (sqlite3) to prove `crossdoc audit verify` "
    "sees it"
)


def crossdoc(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CROSSDOC_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A catalog with ten audit records, one of them carrying hostile text."""
    data = tmp_path / "data"
    catalog = build_catalog(Settings(data_dir=data))
    try:
        catalog.audit.append(
            [
                NewAuditEvent(f"user{i}", "search", "", "10.0.0.1", "ok", {"q": f"q{i}"})
                for i in range(9)
            ]
        )
        catalog.audit.append(
            [NewAuditEvent("mallory", "upload", "doc", "", "ok", {"filename": "a\n\x1b[31mb"})]
        )
    finally:
        catalog.close()
    return data


def sql(data_dir: Path, statement: str) -> None:
    with sqlite3.connect(data_dir / "catalog.sqlite3") as conn:
        conn.execute(statement)


def test_verify_an_intact_log(data_dir: Path) -> None:
    r = crossdoc(data_dir, "audit", "verify")
    assert r.returncode == 0, r.stderr
    assert "intact: 10 records" in r.stdout


def test_verify_names_an_edited_record(data_dir: Path) -> None:
    sql(data_dir, 'UPDATE audit_events SET detail=\'{"q": "innocent"}\' WHERE id=4')
    r = crossdoc(data_dir, "audit", "verify")
    assert r.returncode == 1
    assert "record 4: contents do not match" in r.stderr


def test_verify_names_the_record_after_a_deleted_one(data_dir: Path) -> None:
    sql(data_dir, "DELETE FROM audit_events WHERE id=6")
    r = crossdoc(data_dir, "audit", "verify")
    assert r.returncode == 1
    assert "record 7: chain broken" in r.stderr
    assert "after record 5" in r.stderr


def test_verify_finds_records_deleted_from_the_end(data_dir: Path) -> None:
    sql(data_dir, "DELETE FROM audit_events WHERE id >= 9")
    r = crossdoc(data_dir, "audit", "verify")
    assert r.returncode == 1
    assert "record 9: missing" in r.stderr


def test_verify_finds_a_rewritten_actor_with_rehashed_successor(data_dir: Path) -> None:
    # Editing a record and fixing its own hash still breaks the link from the next one.
    sql(data_dir, "UPDATE audit_events SET actor='someone', hash=printf('%064d', 0) WHERE id=3")
    r = crossdoc(data_dir, "audit", "verify")
    assert r.returncode == 1
    assert "record 3" in r.stderr


def test_export_writes_json_lines(data_dir: Path, tmp_path: Path) -> None:
    r = crossdoc(data_dir, "audit", "export")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 11  # the export is recorded before it runs, so it is in it
    assert records[-1]["action"] == "audit_export" and records[-1]["actor"] == "@cli"
    assert records[-2]["detail"]["filename"] == "a\n\x1b[31mb"  # data intact, one line
    assert "\x1b" not in r.stdout
    out = tmp_path / "audit.jsonl"
    r = crossdoc(data_dir, "audit", "export", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 12
    assert "exported 12 audit records" in r.stderr
    assert crossdoc(data_dir, "audit", "verify").returncode == 0


def test_export_since(data_dir: Path) -> None:
    later = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()  # a KST date
    r = crossdoc(data_dir, "audit", "export", "--since", later)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = crossdoc(data_dir, "audit", "export", "--since", an_hour_ago)
    assert len(r.stdout.splitlines()) == 12  # ten, and the two exports
    assert crossdoc(data_dir, "audit", "export", "--since", "yesterday").returncode == 2
