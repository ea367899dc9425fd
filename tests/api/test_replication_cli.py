"""`crossdoc replication status|drain|enqueue-all` and `crossdoc scrub`, as an operator
runs them (the commands in this process, their settings from the environment)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossdoc.cli import app
from crossdoc.settings import Settings
from crossdoc.wiring.core import build_catalog, build_object_store
from storage.catalog.records import NewBlob, NewDocument


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def crossdoc(env: dict[str, str], *args: str) -> Done:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        result = CliRunner().invoke(app, list(args))
    return Done(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def site(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    """A data dir with one document queued for the replica (a directory)."""
    data = tmp_path / "data"
    replica = tmp_path / "site-b"
    replica.mkdir()
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(replica)}
    settings = Settings(data_dir=data, replica_url=str(replica))
    catalog = build_catalog(settings)
    store = build_object_store(settings)
    content = "운영자 명령 시험".encode() * 100
    sha = hashlib.sha256(content).hexdigest()
    src = tmp_path / "src"
    src.write_bytes(content)
    blob = store.put_file(src, sha256=sha, size=len(content))
    catalog.organisation.create_ministry("M1", "행정안전부")
    catalog.organisation.create_department("D1", "기록관리과", "M1")
    catalog.documents.create(
        NewDocument(
            blob=NewBlob(blob.key, sha, len(content), "a.txt", "", ""),
            title="t",
            department="D1",
            owner="kim",
            visibility="department",
        )
    )
    catalog.close()
    return env, replica, blob.key


def test_status_drain_and_scrub_from_the_command_line(
    site: tuple[dict[str, str], Path, str],
) -> None:
    env, replica, key = site
    done = crossdoc(env, "replication", "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["mode"] == "async" and status["backlog_items"] == 1
    assert status["data_at_risk_seconds"] > 0
    done = crossdoc(env, "replication", "drain")
    assert done.returncode == 0, done.stderr
    assert "copied and verified 1 blobs; 0 versions left" in done.stdout
    assert json.loads(crossdoc(env, "replication", "status", "--json").stdout)["backlog_items"] == 0
    # A bit flip on the replica: found (exit 1), then repaired (exit 0).
    path = replica / key
    path.chmod(0o640)
    data = bytearray(path.read_bytes())
    data[5] ^= 4
    path.write_bytes(bytes(data))
    found = crossdoc(env, "scrub", "--json")
    assert found.returncode == 1, found.stderr
    assert json.loads(found.stdout)["problems"] == [
        {"site": "replica", "key": key, "what": "corrupt"}
    ]
    fixed = crossdoc(env, "scrub", "--repair", "--rate", "50")
    assert fixed.returncode == 0, fixed.stderr
    assert f"repaired on the replica: {key}" in fixed.stdout
    assert "MB/s" in fixed.stdout
    assert crossdoc(env, "scrub").returncode == 0
    # The replica's mount gone: status says so, with exit 1.
    replica.rename(replica.with_name("gone"))
    down = crossdoc(env, "replication", "status")
    assert down.returncode == 1 and "UNREACHABLE" in down.stdout


def test_enqueue_all_queues_what_was_stored_before_the_replica(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)  # no replica yet: nothing queued
    catalog = build_catalog(settings)
    catalog.organisation.create_ministry("M1", "행정안전부")
    catalog.organisation.create_department("D1", "기록관리과", "M1")
    sha = "b" * 64
    catalog.documents.create(
        NewDocument(
            blob=NewBlob(f"blobs/sha256/bb/bb/{sha}", sha, 3, "a.txt", "", ""),
            title="t",
            department="D1",
            owner="kim",
            visibility="department",
        )
    )
    assert catalog.replication.backlog().items == 0
    catalog.close()
    (tmp_path / "site-b").mkdir()
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(tmp_path / "site-b")}
    done = crossdoc(env, "replication", "enqueue-all")
    assert done.returncode == 0, done.stderr
    assert "1 versions queued" in done.stdout
