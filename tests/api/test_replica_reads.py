"""Downloads that fall back to the replica (issue 13), over HTTP, on both stacks: the
primary a directory (embedded) or S3 on moto (full), the replica a directory.

- the primary's copy deleted, or a bit flipped in it: the download (and a version's)
  is byte-identical, from the replica, and the primary is repaired and audited;
- the primary store unreachable (full: its S3 endpoint behind a relay that is cut;
  embedded: its directory gone, as an unmounted volume): served from the replica;
- the replica's copy bad too: a bilingual 503 before any byte, nothing repaired or
  half written;
- a caller who may not read the document: 404 before any store is touched;
- no replica configured: a missing blob answers as before (500), and a flipped bit
  cuts the download short (never a complete response with the wrong bytes).

About 30 s on the embedded leg, 60 s on the full leg (2 loaded cores).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.objectstore.base import ObjectStore, blob_key_for
from storage.objectstore.local import LocalObjectStore
from storage.objectstore.s3 import S3ObjectStore
from storage.replica import primary_of
from tests import conftest as shared
from tests.api.full_stack import stack_servers
from tests.api.outage import Outage
from tests.conftest import Server, start_server

USER = "fall.kim"
OTHER = "fall.lee"
DEPARTMENT = "MOIS-FALL"
OTHER_DEPARTMENT = "MOE-FALL"
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass
class Site:
    server: Server
    replica: Path
    relay: Outage | None  # the primary S3 endpoint's relay (full leg)


def _setup(server: Server) -> None:
    server.user(USER, DEPARTMENT)
    server.user(OTHER, OTHER_DEPARTMENT)


@pytest.fixture(scope="module")
def site(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("replica-reads")
    replica = root / "site-b"
    replica.mkdir()
    overrides = {"replica_url": f"file://{replica}", "rate_limits": False}
    if stack == "full":
        full = shared.FULL_STACK[-1]
        relay = Outage(full.s3_endpoint)
        try:
            engines = {"s3_endpoint": relay.address}
            for server in stack_servers(full, root / "data", overrides, engines=engines):
                _setup(server)
                yield Site(server, replica, relay)
        finally:
            relay.close()
        return
    for server in start_server(root, **overrides):
        _setup(server)
        yield Site(server, replica, None)


@pytest.fixture(scope="module")
def lone(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without a replica."""
    del stack  # started again for each stack
    for server in start_server(tmp_path_factory.mktemp("no-replica"), rate_limits=False):
        _setup(server)
        yield server


# -- the primary site, reached around the API ----------------------------------------------


def _primary(server: Server) -> ObjectStore:
    return primary_of(server.services.store)


def _read_primary(server: Server, key: str) -> bytes | None:
    store = _primary(server)
    if isinstance(store, LocalObjectStore):
        path = store.root / key
        return path.read_bytes() if path.exists() else None
    assert isinstance(store, S3ObjectStore)
    client = shared.FULL_STACK[-1].minio()
    try:
        response = client.get_object(store.bucket, key)
    except Exception:  # NoSuchKey
        return None
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _write_primary(server: Server, key: str, data: bytes | None) -> None:
    """Replace the primary's copy with `data` (bit rot), or delete it (None)."""
    store = _primary(server)
    if isinstance(store, LocalObjectStore):
        path = store.root / key
        if data is None:
            path.unlink()
        else:
            path.chmod(0o640)
            path.write_bytes(data)
        return
    assert isinstance(store, S3ObjectStore)
    client = shared.FULL_STACK[-1].minio()
    if data is None:
        client.remove_object(store.bucket, key)
    else:
        sha = key.rsplit("/", 1)[1]
        client.put_object(store.bucket, key, io.BytesIO(data), len(data), metadata={"sha256": sha})


def _flipped(data: bytes) -> bytes:
    rotten = bytearray(data)
    rotten[len(rotten) // 2] ^= 0x04
    return bytes(rotten)


# -- helpers -----------------------------------------------------------------------------


def _content(tag: str) -> bytes:
    # Several 64 KiB chunks, distinct per test.
    return f"대체 읽기 {tag} · replica read {tag}\n".encode() * 8000


def _wait_replicated(server: Server) -> None:
    deadline = time.monotonic() + 60
    with server.client("admin") as c:
        while True:
            status = c.get("/admin/replication").json()
            if status["backlog_items"] == 0:
                return
            assert time.monotonic() < deadline, status
            time.sleep(0.2)


def _upload(site: Site, tag: str) -> tuple[str, bytes, str]:
    """A document of `tag`'s content, indexed and on the replica: (id, content, key)."""
    content = _content(tag)
    doc = site.server.upload(USER, content, f"{tag}.txt", visibility="department")
    _wait_replicated(site.server)
    key = blob_key_for(hashlib.sha256(content).hexdigest())
    assert (site.replica / key).read_bytes() == content
    return doc["id"], content, key


def _download(server: Server, username: str, path: str) -> tuple[int, bytes, str | None]:
    """Status, the bytes received, and the transport error that cut them short (if any)."""
    received = bytearray()
    with server.client(username) as c, c.stream("GET", path) as r:
        try:
            for chunk in r.iter_raw():
                received += chunk
        except httpx.TransportError as err:
            return r.status_code, bytes(received), repr(err)
        if r.status_code == 200:
            assert int(r.headers["content-length"]) == len(received)
        return r.status_code, bytes(received), None


def _status(server: Server) -> dict[str, Any]:
    with server.client("admin") as c:
        body: dict[str, Any] = c.get("/admin/replication").json()
        return body


def _repairs(server: Server, key: str) -> list[dict[str, Any]]:
    with server.client("admin") as c:
        r = c.get("/admin/audit", params={"actor": "@read-repair", "limit": 1000})
        assert r.status_code == 200, r.text
        return [e for e in r.json() if e["target"] == key]


def _assert_bilingual_503(status: int, body: bytes) -> None:
    assert status == 503, body[:300]
    error = json.loads(body)["error"]
    assert error["code"] == "storage_unavailable"
    assert _HANGUL.search(error["message"]) and "either site" in error["message"]


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "bit-flipped"])
def test_a_damaged_primary_copy_is_served_from_the_replica_and_repaired(
    site: Site, damage: str
) -> None:
    server = site.server
    doc_id, content, key = _upload(site, damage)
    before = _status(server)["fallback_reads"]
    _write_primary(server, key, None if damage == "deleted" else _flipped(content))

    status, body, cut = _download(server, USER, f"/documents/{doc_id}/content")

    assert (status, cut) == (200, None)
    assert body == content  # byte for byte
    assert _read_primary(server, key) == content  # the primary repaired
    (repair,) = _repairs(server, key)
    assert repair["action"] == "blob_repair" and repair["outcome"] == "ok"
    assert repair["detail"]["was"] == ("missing" if damage == "deleted" else "corrupt")
    assert repair["detail"]["from"] == "replica" and repair["detail"]["size"] == len(content)
    now = _status(server)
    assert now["fallback_reads"] == before + 1 and now["read_repairs"] >= 1
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    assert f"crossdoc_replica_fallback_reads_total {now['fallback_reads']}\n" in metrics


def test_an_old_versions_download_falls_back_too(site: Site) -> None:
    server = site.server
    doc_id, first, key = _upload(site, "version-1")
    second = _content("version-2")
    with server.client(USER) as c:
        r = c.put(f"/documents/{doc_id}/content", files={"file": ("version-2.txt", second)})
        assert r.status_code == 202, r.text
    _wait_replicated(server)
    _write_primary(server, key, _flipped(first))

    status, body, cut = _download(server, USER, f"/documents/{doc_id}/versions/1/content")

    assert (status, cut, body == first) == (200, None, True)
    assert _read_primary(server, key) == first
    assert len(_repairs(server, key)) == 1


def test_an_unreachable_primary_store_is_read_from_the_replica(site: Site) -> None:
    server = site.server
    doc_id, content, _ = _upload(site, "unreachable")
    before = _status(server)["fallback_reads"]
    store = _primary(server)
    if site.relay is not None:
        site.relay.down()  # the primary S3 endpoint stops answering
    else:
        assert isinstance(store, LocalObjectStore)
        store.root.rename(store.root.with_name("objects-unmounted"))
    try:
        status, body, cut = _download(server, USER, f"/documents/{doc_id}/content")
        assert (status, cut) == (200, None)
        assert body == content
        assert _status(server)["fallback_reads"] == before + 1
        if isinstance(store, LocalObjectStore):
            # The repair was refused: nothing is written beneath a missing mount point.
            assert not store.root.exists()
    finally:
        if site.relay is not None:
            site.relay.up()
        else:
            assert isinstance(store, LocalObjectStore)
            store.root.with_name("objects-unmounted").rename(store.root)


@pytest.mark.parametrize("primary", ["deleted", "bit-flipped"])
def test_no_intact_copy_on_either_site_is_a_503_and_no_wrong_byte(site: Site, primary: str) -> None:
    server = site.server
    doc_id, content, key = _upload(site, f"both-bad-{primary}")
    replica_copy = site.replica / key
    replica_copy.chmod(0o640)
    replica_copy.write_bytes(_flipped(content))  # the replica's copy rotted too
    _write_primary(server, key, None if primary == "deleted" else _flipped(content))
    failures = _status(server)["unreadable_reads"]

    status, body, cut = _download(server, USER, f"/documents/{doc_id}/content")

    assert cut is None
    _assert_bilingual_503(status, body)
    assert content not in body and _flipped(content) not in body
    # Nothing repaired from a bad copy, nothing half written.
    expected = None if primary == "deleted" else _flipped(content)
    assert _read_primary(server, key) == expected
    assert _repairs(server, key) == []
    store = _primary(server)
    if isinstance(store, LocalObjectStore):
        assert [p.name for p in (store.root / key).parent.iterdir() if p.name != key[-64:]] == []
    assert _status(server)["unreadable_reads"] == failures + 1


def test_a_caller_who_may_not_read_gets_404_before_any_store_is_touched(site: Site) -> None:
    server = site.server
    doc_id, _, key = _upload(site, "not-yours")
    _write_primary(server, key, None)
    before = _status(server)

    status, _, _ = _download(server, OTHER, f"/documents/{doc_id}/content")

    assert status == 404
    after = _status(server)
    assert after["fallback_reads"] == before["fallback_reads"]
    assert after["unreadable_reads"] == before["unreadable_reads"]
    assert _read_primary(server, key) is None  # no read, so no repair either
    assert _repairs(server, key) == []


def test_without_a_replica_a_damaged_blob_is_never_served_whole(lone: Server) -> None:
    content = _content("lone")
    doc = lone.upload(USER, content, "lone.txt", visibility="department")
    key = blob_key_for(hashlib.sha256(content).hexdigest())
    assert _status(lone)["configured"] is False

    _write_primary(lone, key, _flipped(content))
    status, body, cut = _download(lone, USER, f"/documents/{doc['id']}/content")
    # The headers were sent before the last byte was checked: the body is cut short.
    assert status == 200 and cut is not None, (status, len(body), cut)
    assert len(body) < len(content)

    _write_primary(lone, key, None)  # as before: a 500 in the error shape
    status, body, cut = _download(lone, USER, f"/documents/{doc['id']}/content")
    assert status == 500 and cut is None
    assert b'"storage_error"' in body
    assert _status(lone)["fallback_reads"] == 0


def test_metrics_and_status_name_the_fallback_counts(site: Site) -> None:
    status = _status(site.server)
    assert {"fallback_reads", "read_repairs", "unreadable_reads"} <= status.keys()
    metrics = httpx.get(f"{site.server.base_url}/metrics", timeout=30).text
    for name in (
        "crossdoc_replica_fallback_reads_total",
        "crossdoc_read_repairs_total",
        "crossdoc_unreadable_reads_total",
    ):
        assert f"# TYPE {name} counter\n" in metrics
