"""`crossdoc audit verify` and `crossdoc audit export`, against a catalog tampered with directly.

Both catalogs: SQLite on the embedded leg, PostgreSQL (a database of its own) on the full leg.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from crossdoc.settings import Settings
from crossdoc.wiring.core import build_catalog
from storage.catalog.records import NewAuditEvent
from tests.pg_databases import ThrowawayDatabases

PG_ENV = "CROSSDOC_TEST_DATABASE_URL"


@dataclass
class Deployment:
    """A data directory and, on the full leg, the PostgreSQL catalog it names."""

    data_dir: Path
    database_url: str | None

    @property
    def env(self) -> dict[str, str]:
        env = {"CROSSDOC_DATA_DIR": str(self.data_dir)}
        if self.database_url:
            env["CROSSDOC_DATABASE_URL"] = self.database_url
        return env

    def sql(self, statement: str) -> None:
        """Run `statement` on the catalog directly, behind Crossdoc's back."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()


def crossdoc(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSDOC_DATABASE")}
    return subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env={**env, **deployment.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def database_url(stack: str) -> Iterator[str | None]:
    """None on the embedded leg (SQLite); a fresh PostgreSQL database on the full leg."""
    if stack != "full":
        yield None
        return
    with ThrowawayDatabases(os.environ[PG_ENV], "crossdoc_audit") as dbs:
        yield dbs.new()


@pytest.fixture
def deployment(tmp_path: Path, database_url: str | None) -> Deployment:
    """A catalog with ten audit records, one of them carrying hostile text."""
    data = tmp_path / "data"
    catalog = build_catalog(Settings(data_dir=data, database_url=database_url))
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
    return Deployment(data, database_url)


def test_verify_an_intact_log(deployment: Deployment) -> None:
    r = crossdoc(deployment, "audit", "verify")
    assert r.returncode == 0, r.stderr
    assert "intact: 10 records" in r.stdout


def test_verify_names_an_edited_record(deployment: Deployment) -> None:
    deployment.sql('UPDATE audit_events SET detail=\'{"q": "innocent"}\' WHERE id=4')
    r = crossdoc(deployment, "audit", "verify")
    assert r.returncode == 1
    assert "record 4: contents do not match" in r.stderr


def test_verify_names_the_record_after_a_deleted_one(deployment: Deployment) -> None:
    deployment.sql("DELETE FROM audit_events WHERE id=6")
    r = crossdoc(deployment, "audit", "verify")
    assert r.returncode == 1
    assert "record 7: chain broken" in r.stderr
    assert "after record 5" in r.stderr


def test_verify_finds_records_deleted_from_the_end(deployment: Deployment) -> None:
    deployment.sql("DELETE FROM audit_events WHERE id >= 9")
    r = crossdoc(deployment, "audit", "verify")
    assert r.returncode == 1
    assert "record 9: missing" in r.stderr


def test_verify_finds_a_rewritten_actor_with_rehashed_successor(deployment: Deployment) -> None:
    # Editing a record and fixing its own hash still breaks the link from the next one.
    deployment.sql(f"UPDATE audit_events SET actor='someone', hash='{'0' * 64}' WHERE id=3")
    r = crossdoc(deployment, "audit", "verify")
    assert r.returncode == 1
    assert "record 3" in r.stderr


def test_export_writes_json_lines(deployment: Deployment, tmp_path: Path) -> None:
    r = crossdoc(deployment, "audit", "export")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 11  # the export is recorded before it runs, so it is in it
    assert records[-1]["action"] == "audit_export" and records[-1]["actor"] == "@cli"
    assert records[-2]["detail"]["filename"] == "a\n\x1b[31mb"  # data intact, one line
    assert "\x1b" not in r.stdout
    out = tmp_path / "audit.jsonl"
    r = crossdoc(deployment, "audit", "export", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 12
    assert "exported 12 audit records" in r.stderr
    assert crossdoc(deployment, "audit", "verify").returncode == 0


def test_export_since(deployment: Deployment) -> None:
    later = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()  # a KST date
    r = crossdoc(deployment, "audit", "export", "--since", later)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = crossdoc(deployment, "audit", "export", "--since", an_hour_ago)
    assert len(r.stdout.splitlines()) == 12  # ten, and the two exports
    assert crossdoc(deployment, "audit", "export", "--since", "yesterday").returncode == 2
