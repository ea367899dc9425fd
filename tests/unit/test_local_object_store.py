"""LocalObjectStore beyond the shared contract: crashes, I/O faults, durability, processes."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from storage.errors import (
    BlobNotFoundError,
    IntegrityError,
    StorageError,
    StorageUnavailableError,
)
from storage.objectstore import local as local_module
from storage.objectstore.base import StoredBlob, blob_key_for, verify_blob
from storage.objectstore.local import LocalObjectStore

MIB = 1 << 20
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def write_source(tmp_path: Path, data: bytes, name: str = "source.bin") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[Path]:
    """Every regular file in the store, hidden temp files included."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_only_blobs(store: LocalObjectStore, *blobs: StoredBlob) -> None:
    assert files_under(store.root) == sorted(store.root / b.key for b in blobs)


def oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


# -- faults inside the process: nothing partial visible, temp files removed, retry works


class _FailsHalfway:
    """A source file whose read fails after `limit` bytes, like a dying disk or NFS."""

    def __init__(self, file: BinaryIO, limit: int) -> None:
        self._file = file
        self._left = limit

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise oserror(errno.EIO)
        data = self._file.read(min(n, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _FailsHalfway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_source_failing_mid_copy_leaves_nothing_and_retry_succeeds(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * MIB + 5)
    source, sha = write_source(tmp_path, data)
    real_open = Path.open

    def flaky_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == source:
            return _FailsHalfway(real_open(self, "rb"), limit=len(data) // 2)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", flaky_open)
    # The caller's file failed, not the store: its OSError comes through as it is.
    with pytest.raises(OSError, match="Input/output error") as raised:
        store.put_file(source, sha256=sha, size=len(data))
    assert not isinstance(raised.value, StorageError)
    assert not store.exists(blob_key_for(sha))
    assert_only_blobs(store)

    monkeypatch.undo()
    blob = store.put_file(source, sha256=sha, size=len(data))
    assert b"".join(store.iter_chunks(blob.key)) == data
    assert_only_blobs(store, blob)


@pytest.mark.parametrize(
    ("function", "code", "error"),
    [
        ("write", errno.ENOSPC, StorageUnavailableError),
        ("fsync", errno.EIO, StorageUnavailableError),
        ("link", errno.ENOSPC, StorageUnavailableError),
        ("link", errno.EACCES, StorageError),
    ],
)
def test_store_io_fault_leaves_nothing_and_retry_succeeds(
    store: LocalObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    code: int,
    error: type[StorageError],
) -> None:
    data = os.urandom(2 * MIB + 1)
    source, sha = write_source(tmp_path, data)
    real = getattr(os, function)
    calls = 0

    def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2 or function != "write":  # writes: fail mid-copy, after one chunk
            raise oserror(code)
        return real(*args)

    monkeypatch.setattr(os, function, failing)
    with pytest.raises(error):
        store.put_file(source, sha256=sha, size=len(data))
    assert not store.exists(blob_key_for(sha))
    assert_only_blobs(store)

    monkeypatch.undo()
    blob = store.put_file(source, sha256=sha, size=len(data))
    assert verify_blob(store, blob.key)
    assert_only_blobs(store, blob)


def test_directory_fsync_failure_is_reported_and_retry_makes_it_durable(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob may already be linked; the caller must not record it until a retry passes."""
    source, sha = write_source(tmp_path, b"durable?")
    real_fsync = os.fsync

    def fsync_files_only(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise oserror(errno.EIO)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_files_only)
    with pytest.raises(StorageUnavailableError):
        store.put_file(source, sha256=sha, size=8)

    monkeypatch.undo()
    synced: list[str] = []

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    blob = store.put_file(source, sha256=sha, size=8)
    assert str(store.root / blob.key) not in synced  # already there: not rewritten
    assert str((store.root / blob.key).parent) in synced
    assert str(store.root) in synced


def test_put_fsyncs_the_data_before_the_name_and_every_new_directory(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sha = write_source(tmp_path, b"fsync me")
    real_fsync, real_link = os.fsync, os.link
    events: list[str] = []

    def recording_fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def recording_link(src: Any, dst: Any, **kwargs: Any) -> None:
        events.append(f"link {dst}")
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "link", recording_link)
    blob = store.put_file(source, sha256=sha, size=8)

    target = store.root / blob.key
    link = events.index(f"link {target}")
    assert events[link - 1].startswith(f"fsync {target.parent}/.{sha}.")  # the temp file
    expected_dirs = [target.parent, *target.parent.parents]
    expected_dirs = expected_dirs[: expected_dirs.index(store.root) + 1]
    assert events[link + 1 :] == [f"fsync {d}" for d in expected_dirs]


# -- a real crash: a writer process killed at each step ------------------------------

_CRASHING_WRITER = """
import os, sys, time
from pathlib import Path
from storage.objectstore import local

root, source, sha, size, step, marker = sys.argv[1:]
local._CHUNK_SIZE = 64 * 1024
real = getattr(os, step)
calls = 0

def hang(*args):
    global calls
    calls += 1
    if step != "write" or calls == 3:  # "write": stop mid-copy
        Path(marker).write_text(step)
        time.sleep(120)
    return real(*args)

setattr(os, step, hang)
local.LocalObjectStore(Path(root)).put_file(Path(source), sha256=sha, size=int(size))
"""


@pytest.mark.slow
@pytest.mark.parametrize("step", ["write", "fsync", "link"])
def test_writer_killed_mid_put_leaves_no_visible_blob(
    store: LocalObjectStore, tmp_path: Path, step: str
) -> None:
    data = os.urandom(MIB)
    source, sha = write_source(tmp_path, data)
    marker = tmp_path / "reached"
    args = [str(store.root), str(source), sha, str(len(data)), step, str(marker)]
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert child.poll() is None, "writer exited before reaching the crash point"
            assert time.monotonic() < deadline, "writer never reached the crash point"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)

    key = blob_key_for(sha)
    assert not store.exists(key)
    with pytest.raises(BlobNotFoundError):
        store.open(key)
    # What a crash leaves is a hidden temp file, never something at the key.
    [leftover] = files_under(store.root)
    assert leftover.name.startswith(f".{sha}.")
    assert leftover.name.endswith(".tmp")

    blob = store.put_file(source, sha256=sha, size=len(data))
    assert verify_blob(store, blob.key)
    assert store.size(blob.key) == len(data)


# -- processes racing for the same blob ----------------------------------------------


def _put_from_process(root: str, source: str, sha: str, size: int, start: Any, out: Any) -> None:
    start.wait()
    try:
        blob = LocalObjectStore(Path(root)).put_file(Path(source), sha256=sha, size=size)
        out.put(("ok", blob.key))
    except Exception as err:
        out.put(("error", repr(err)))


def test_concurrent_puts_from_processes(store: LocalObjectStore, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB)
    sha = hashlib.sha256(data).hexdigest()
    sources = [write_source(tmp_path, data, f"copy-{i}.bin")[0] for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(len(sources)), ctx.Queue()
    workers = [
        ctx.Process(
            target=_put_from_process,
            args=(str(store.root), str(s), sha, len(data), start, out),
        )
        for s in sources
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    assert results == [("ok", blob_key_for(sha))] * len(workers)
    assert_only_blobs(store, StoredBlob(blob_key_for(sha), sha, len(data)))
    assert verify_blob(store, blob_key_for(sha))


# -- what is already there is never touched ------------------------------------------


def test_existing_file_of_another_size_is_reported_not_overwritten(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    source, sha = write_source(tmp_path, b"the real bytes")
    target = store.root / blob_key_for(sha)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"damaged")

    with pytest.raises(IntegrityError, match="not overwritten"):
        store.put_file(source, sha256=sha, size=14)

    assert target.read_bytes() == b"damaged"
    assert_only_blobs(store, StoredBlob(blob_key_for(sha), sha, 7))


def test_without_hard_links_publishes_by_rename_but_never_replaces(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise oserror(errno.EPERM)

    monkeypatch.setattr(os, "link", no_links)
    source, sha = write_source(tmp_path, b"no hard links here")
    blob = store.put_file(source, sha256=sha, size=18)
    assert store.open(blob.key).read() == b"no hard links here"
    inode = os.stat(store.root / blob.key).st_ino

    assert store.put_file(source, sha256=sha, size=18) == blob
    assert os.stat(store.root / blob.key).st_ino == inode
    assert_only_blobs(store, blob)


def test_corruption_is_detected_by_verify_and_by_streaming(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    source, sha = write_source(tmp_path, data)
    blob = store.put_file(source, sha256=sha, size=len(data))
    assert verify_blob(store, blob.key)

    path = store.root / blob.key
    path.chmod(0o640)
    with path.open("r+b") as file:  # bit rot, same size
        file.seek(123_456)
        file.write(bytes([data[123_456] ^ 0xFF]))

    assert not verify_blob(store, blob.key)
    with pytest.raises(IntegrityError):
        b"".join(store.iter_chunks(blob.key))
    # The last chunk is held back until the digest is checked: a download of a
    # corrupt blob is cut short, never completed with the wrong bytes.
    received: list[bytes] = []
    with pytest.raises(IntegrityError):
        received.extend(store.iter_chunks(blob.key, 65_536))  # keeps what came before the error
    assert 0 < sum(map(len, received)) < len(data)


def test_blobs_are_read_only_and_no_temp_files_remain(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    source, sha = write_source(tmp_path, b"final")
    blob = store.put_file(source, sha256=sha, size=5)

    assert stat.S_IMODE(os.stat(store.root / blob.key).st_mode) == 0o440
    assert_only_blobs(store, blob)


def test_missing_source_is_the_callers_error(store: LocalObjectStore, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "nope.bin", sha256=sha, size=0)
    assert_only_blobs(store)


# -- the root ------------------------------------------------------------------------


def test_missing_root_is_not_recreated_when_create_root_is_off(tmp_path: Path) -> None:
    """An unmounted volume must fail loudly, not fill the disk under the mount point."""
    root = tmp_path / "mnt" / "objects"
    store = LocalObjectStore(root, create_root=False)
    source, sha = write_source(tmp_path, b"where do I go?")

    with pytest.raises(StorageUnavailableError):
        store.ping()
    with pytest.raises(StorageUnavailableError):
        store.put_file(source, sha256=sha, size=14)
    assert not root.exists()
    assert not store.exists(blob_key_for(sha))


def test_root_is_created_by_default(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "new" / "objects")
    store.ping()
    assert (tmp_path / "new" / "objects").is_dir()


def test_copy_uses_bounded_reads(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 * MIB + 3)
    source, sha = write_source(tmp_path, data)
    real_write: Callable[[int, Any], int] = os.write
    largest = 0

    def measuring_write(fd: int, buffer: Any) -> int:
        nonlocal largest
        largest = max(largest, len(buffer))
        return real_write(fd, buffer)

    monkeypatch.setattr(os, "write", measuring_write)
    store.put_file(source, sha256=sha, size=len(data))
    assert 0 < largest <= local_module._CHUNK_SIZE == MIB


def test_directory_chain_is_synced_once_then_only_the_leaf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import os

    from storage.objectstore import local as local_module

    synced: list[str] = []
    real = local_module._fsync_dir

    def spy(path: Path) -> None:
        synced.append(str(path))
        real(path)

    monkeypatch.setattr(local_module, "_fsync_dir", spy)
    store = local_module.LocalObjectStore(tmp_path / "objects")
    src = tmp_path / "src"

    def put(data: bytes) -> str:
        src.write_bytes(data)
        return store.put_file(src, sha256=hashlib.sha256(data).hexdigest(), size=len(data)).key

    key = put(b"first")
    leaf = tmp_path / "objects" / os.path.dirname(key)
    first = list(synced)
    assert first[0] == str(leaf)
    assert str(tmp_path / "objects") in first  # the whole new chain reached the root
    # Another blob in the same leaf directory: only the leaf is synced again.
    prefix = key.split("/")[-1][:4]
    n = 0
    while hashlib.sha256(f"second {n}".encode()).hexdigest()[:4] != prefix:
        n += 1  # about 65,536 tries: a digest that lands in the same leaf
    data = f"second {n}".encode()
    synced.clear()
    put(data)
    assert synced == [str(leaf)]
