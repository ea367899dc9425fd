"""A crash during replication: `crossdoc serve` SIGKILLed while its replicator copies
the backlog, then started again. The queue resumes (claims lapse, rows stay until
verified): in the end the replica holds every stored version, byte for byte, exactly
once under its key (no gap, no duplicate), and the scrub clears the leftovers."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.cli import for_second_site
from storage.scrub import Scrubber
from tests.api.serve_process import ServeProcess, prepare_data_dir

pytestmark = pytest.mark.slow

TRIALS = 3
UPLOADS = 16
SIZE = 512 * 1024


def _published(root: Path) -> dict[str, Path]:
    """Blob files under `root` by key (the hidden temporary files apart)."""
    found = {}
    for path in (root / "blobs").rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            found[str(path.relative_to(root))] = path
    return found


def test_sigkill_during_replication_leaves_no_gap_and_no_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica = tmp_path / "site-b"
    replica.mkdir()
    data = tmp_path / "data"
    monkeypatch.setenv("CROSSDOC_REPLICA_URL", f"file://{replica}")
    monkeypatch.setenv("CROSSDOC_REPLICATION_LEASE_SECONDS", "1")
    monkeypatch.setenv("CROSSDOC_DATA_DIR", str(data))
    prepare_data_dir(data)
    killed_with_backlog = 0
    for trial in range(TRIALS):
        server = ServeProcess(data)
        try:
            with server.client() as c:
                for n in range(UPLOADS):
                    r = c.post("/documents", files={"file": (f"{trial}-{n}.bin", os.urandom(SIZE))})
                    assert r.status_code == 202, r.text
        finally:
            server.kill()  # mid-replication: the backlog is being copied
        site = for_second_site(Settings())
        try:
            if site.catalog.replication.backlog().items:
                killed_with_backlog += 1
        finally:
            site.close()
    # Restarted: the queue resumes from the catalog.
    server = ServeProcess(data)
    try:
        site = for_second_site(Settings())
        try:
            deadline = time.monotonic() + 120
            while site.catalog.replication.backlog().items:
                assert time.monotonic() < deadline, site.catalog.replication.backlog()
                time.sleep(0.2)
            keys = set()
            after = ""
            while page := site.catalog.replication.stored_blobs(after, 1000):
                keys.update(b.blob_key for b in page)
                after = page[-1].blob_key
            assert len(keys) == TRIALS * UPLOADS
            published = _published(replica)
            assert set(published) == keys  # no gap, nothing else
            for key, path in published.items():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == key.rsplit("/", 1)[1]
                assert path.read_bytes() == (data / "objects" / key).read_bytes()
            report = Scrubber(site.catalog, site.primary, site.replica, data / "spool").run(
                temp_age_seconds=0
            )
            assert report.problems == []
            leftovers = [p for p in replica.rglob(".*.tmp")]
            assert leftovers == []
        finally:
            site.close()
    finally:
        server.stop()
    # The trials are only a test of a crash if the kill found work in hand.
    assert killed_with_backlog >= 1
