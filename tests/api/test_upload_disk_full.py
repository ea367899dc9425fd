"""A full disk under an upload, over HTTP: every upload gets 202 or a JSON
`507 insufficient_storage`, never a 500 or a dropped connection; nothing is left
behind (no spool file, no temporary file in the object store, no row); and the
next upload after space is freed is accepted.

Two ways: `test_real_full_disks_*` put the spool, the object store and the
catalog on three small tmpfs mounts and fill them for real (skipped, with the
reason, where mounting is not permitted); the others, which always run, make
the write fail with ENOSPC at the file or the database on one server.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from storage.ingest import SpoolWriter
from storage.objectstore.base import blob_key_for
from tests.conftest import Server, start_server

pytestmark = pytest.mark.embedded_only(
    "it fills the local disks under the spool, the object store directory and the SQLite catalog; "
    "on the full stack the bytes and the catalog are on S3 and PostgreSQL (their outages: "
    "test_full_stack_faults.py)"
)

#: Big enough that the disk refuses it while the client is still sending.
BODY_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def user(server: Server) -> str:
    return server.user("diskfull", "MOIS-Q")


def _content(tag: str) -> bytes:
    return tag.encode() + os.urandom(BODY_BYTES)


def _upload(server: Server, user: str, content: bytes, name: str = "big.bin") -> httpx.Response:
    # A dropped connection would raise here (httpx.RemoteProtocolError, WriteError…).
    with server.client(user) as c:
        return c.post("/documents", files={"file": (name, content)})


def _assert_full(r: httpx.Response) -> None:
    assert r.status_code == 507, r.text
    error = r.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert "저장 공간" in error["message"] and "Storage is full" in error["message"]


def _leftovers(server: Server) -> list[Path]:
    spool = list(server.services.settings.spool_dir.glob("upload-*"))
    temps = list(server.services.settings.objects_dir.rglob("*.tmp"))
    return spool + temps


def _assert_nothing_kept(server: Server, before: int, content: bytes) -> None:
    assert server.services.catalog.documents.count() == before
    assert _leftovers(server) == []


# -- faults injected at the file and the database (always run) ---------------------


class _FullDiskFile:
    """A spool file on a disk that fills up after `room` bytes: write, flush and
    close raise ENOSPC as a real file does (close after closing the descriptor)."""

    def __init__(self, file: Any, room: int) -> None:
        self._file = file
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._file.write(data))

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self) -> None:
        self._file.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    @property
    def closed(self) -> bool:
        return bool(self._file.closed)


@pytest.fixture
def full_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = SpoolWriter._open

    def open_on_full_disk(self: SpoolWriter) -> Any:
        self._file = _FullDiskFile(real_open(self), room=64 * 1024)  # type: ignore[assignment]
        return self._file

    monkeypatch.setattr(SpoolWriter, "_open", open_on_full_disk)


def test_a_full_spool_disk_is_507_and_leaves_nothing(
    server: Server, user: str, full_spool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = server.services.catalog.documents.count()
    content = _content("spool")

    _assert_full(_upload(server, user, content))

    _assert_nothing_kept(server, before, content)
    assert not server.services.store.exists(blob_key_for(hashlib.sha256(content).hexdigest()))
    monkeypatch.undo()  # space is back
    assert _upload(server, user, content).status_code == 202


def test_a_full_spool_disk_for_a_new_version_is_507_and_keeps_the_current_one(
    server: Server, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = server.upload(user, b"version one", "v.txt", wait=False)
    real_open = SpoolWriter._open

    def open_on_full_disk(self: SpoolWriter) -> Any:
        self._file = _FullDiskFile(real_open(self), room=0)  # type: ignore[assignment]
        return self._file

    monkeypatch.setattr(SpoolWriter, "_open", open_on_full_disk)
    with server.client(user) as c:
        r = c.put(f"/documents/{doc['id']}/content", files={"file": ("v.txt", _content("v2"))})
    _assert_full(r)
    assert server.services.catalog.documents.get(doc["id"]).version == 1
    assert _leftovers(server) == []
    monkeypatch.undo()
    with server.client(user) as c:
        r = c.put(f"/documents/{doc['id']}/content", files={"file": ("v.txt", b"version two")})
    assert r.status_code == 202 and r.json()["version"] == 2


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_a_full_object_store_disk_is_507_and_leaves_no_temporary_file(
    server: Server, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write fails with ENOSPC for the object store's files only (the store
    writes its temporary file with os.write; everything else writes as usual)."""
    objects = str(server.services.settings.objects_dir.resolve())
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if _fd_path(fd).startswith(objects):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    before = server.services.catalog.documents.count()
    content = _content("objects")
    monkeypatch.setattr(os, "write", write)

    _assert_full(_upload(server, user, content))

    monkeypatch.undo()
    _assert_nothing_kept(server, before, content)
    assert not server.services.store.exists(blob_key_for(hashlib.sha256(content).hexdigest()))
    assert _upload(server, user, content).status_code == 202
    assert server.services.store.exists(blob_key_for(hashlib.sha256(content).hexdigest()))


@pytest.fixture
def full_catalog(server: Server) -> Iterator[Callable[[], None]]:
    """SQLite's page limit, at the catalog's current size, on every new connection:
    writes fail with the real SQLITE_FULL ("database or disk is full")."""
    engine = server.services.catalog.engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    def limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    def free() -> None:
        if event.contains(engine, "connect", limit):
            event.remove(engine, "connect", limit)
            engine.dispose()

    event.listen(engine, "connect", limit)
    engine.dispose()
    yield free
    free()


def test_a_full_catalog_disk_is_507_and_records_nothing(
    server: Server, user: str, full_catalog: Callable[[], None]
) -> None:
    before = server.services.catalog.documents.count()
    answers: list[httpx.Response] = []
    while len(answers) < 40 and not any(r.status_code != 202 for r in answers):
        n = len(answers)
        answers.append(_upload(server, user, f"catalog {n}".encode(), f"c{n}.txt"))
    # The first uploads may fit in the catalog's last free pages; then it is full.
    assert {r.status_code for r in answers} <= {202, 507}, [r.text for r in answers]
    refused = [r for r in answers if r.status_code != 202]
    assert refused, "the catalog never filled up"
    _assert_full(refused[0])
    accepted = sum(r.status_code == 202 for r in answers)
    assert server.services.catalog.documents.count() == before + accepted
    assert _leftovers(server) == []
    full_catalog()  # space is back
    assert _upload(server, user, b"after the catalog had room again", "ok.txt").status_code == 202


# -- real full disks (tmpfs) ---------------------------------------------------------


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the fault-injection tests cover it")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this sandbox does not permit mounting a tmpfs: {done.stderr.strip()}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _write_until_full(file: Any, chunk: bytes) -> None:
    try:
        while True:
            file.write(chunk)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise


def _fill(directory: Path) -> Path:
    """Write a file in `directory` until its filesystem is full; return it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        _write_until_full(f, b"\0" * (64 * 1024))
        _write_until_full(f, b"\0" * 512)  # the last pages
    return filler


def _fill_but(directory: Path, room: int) -> Path:
    """Fill `directory`'s filesystem but for about `room` bytes."""
    filler = _fill(directory)
    os.truncate(filler, max(0, filler.stat().st_size - room))
    return filler


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("full-disks")
    mounts = {"data": root / "data-disk", "objects": root / "objects-disk", "catalog": root / "db"}
    mounted: list[Path] = []
    try:
        for name, path in mounts.items():
            _mount_tmpfs(path, {"data": "48m", "objects": "96m"}.get(name, "16m"))
            mounted.append(path)
        servers = start_server(
            mounts["data"],
            storage_url=f"file://{mounts['objects'] / 'objects'}",
            database_url=f"sqlite:///{mounts['catalog'] / 'catalog.sqlite3'}",
        )
        server = next(servers)
        server.user("fulldisk", "MOIS-Z")
        yield server, mounts
        servers.close()
    finally:
        for path in mounted:
            _unmount(path)


@pytest.mark.parametrize("disk", ["data", "objects", "catalog"])
def test_real_full_disks_answer_507_and_recover(
    disks: tuple[Server, dict[str, Path]], disk: str
) -> None:
    server, mounts = disks
    before = server.services.catalog.documents.count()
    if disk == "catalog":
        # An empty write-ahead log, so that the next transaction must grow a file.
        with server.services.catalog.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = _fill(mounts[disk])
    try:
        content = _content(disk)
        _assert_full(_upload(server, "fulldisk", content))
        assert server.services.catalog.documents.count() == before
        assert _leftovers(server) == []
    finally:
        filler.unlink()
    r = _upload(server, "fulldisk", content)
    assert r.status_code == 202, r.text
    assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_real_concurrent_uploads_filling_the_disks(disks: tuple[Server, dict[str, Path]]) -> None:
    """As the outside probe did: more uploads at once than the disks can hold."""
    server, mounts = disks
    filler = _fill_but(mounts["data"], 6 * 1024 * 1024)
    contents = [_content(f"many {n}") for n in range(16)]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda c: _upload(server, "fulldisk", c), contents))
        assert {r.status_code for r in answers} <= {202, 507}, [r.text for r in answers]
        assert any(r.status_code == 507 for r in answers)
        for content, r in zip(contents, answers, strict=True):
            if r.status_code == 202:  # intact
                assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()
                assert server.services.store.size(blob_key_for(r.json()["sha256"])) == len(content)
            else:
                _assert_full(r)
        assert _leftovers(server) == []
    finally:
        filler.unlink()
    assert _upload(server, "fulldisk", _content("after")).status_code == 202
