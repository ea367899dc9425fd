"""The behaviour every ObjectStore adapter must have, run over each of them.

The `object_store` fixture (conftest.py) yields the local filesystem store, the S3
store on an in-process S3 server (moto), and the S3 store on real MinIO when
`CROSSDOC_TEST_S3_ENDPOINT` is set. An adapter that cannot pass a test here has a
gap to declare, not a test to skip quietly.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.errors import BlobNotFoundError, IntegrityError
from storage.objectstore.base import ObjectStore, StoredBlob, blob_key_for

MIB = 1 << 20


@dataclass(frozen=True)
class Source:
    """A file to upload and what the caller knows about it."""

    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def key(self) -> str:
        return blob_key_for(self.sha256)


MakeSource = Callable[..., Source]


@pytest.fixture
def make_source(tmp_path: Path) -> MakeSource:
    """Write bytes (random of `size`, unless `data` is given) to a fresh file."""
    counter = iter(range(1_000_000))

    def make(size: int = 1000, *, data: bytes | None = None) -> Source:
        payload = os.urandom(size) if data is None else data
        path = tmp_path / f"source-{next(counter)}.bin"
        path.write_bytes(payload)
        return Source(path, payload)

    return make


def put(store: ObjectStore, source: Source) -> StoredBlob:
    return store.put_file(source.path, sha256=source.sha256, size=source.size)


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as file:
        return file.read()


def test_adapter_implements_the_port(object_store: ObjectStore) -> None:
    assert isinstance(object_store, ObjectStore)
    object_store.ping()


# -- round trip ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 65_536, MIB + 1, 6 * MIB + 7],
    ids=["empty", "one-byte", "chunk-boundary", "1MiB+1", "multipart-6MiB"],
)
def test_round_trip_is_byte_identical(
    object_store: ObjectStore, make_source: MakeSource, size: int
) -> None:
    source = make_source(size)

    blob = put(object_store, source)

    assert blob == StoredBlob(key=source.key, sha256=source.sha256, size=size)
    assert object_store.exists(blob.key)
    assert object_store.size(blob.key) == size
    assert hashlib.sha256(read_all(object_store, blob.key)).hexdigest() == source.sha256
    streamed = b"".join(object_store.iter_chunks(blob.key))
    assert hashlib.sha256(streamed).hexdigest() == source.sha256


def test_open_reads_in_small_pieces(object_store: ObjectStore, make_source: MakeSource) -> None:
    source = make_source(10_000)
    put(object_store, source)

    pieces = []
    with object_store.open(source.key) as file:
        while piece := file.read(333):
            pieces.append(piece)

    assert b"".join(pieces) == source.data


def test_put_is_idempotent(object_store: ObjectStore, make_source: MakeSource) -> None:
    source = make_source(50_000)
    again = make_source(data=source.data)  # same bytes, another upload's temp file

    first = put(object_store, source)
    second = put(object_store, source)
    third = put(object_store, again)

    assert first == second == third
    assert read_all(object_store, first.key) == source.data


# -- never overwrite, never accept unverified bytes ----------------------------------


def test_never_overwrites_with_other_bytes_of_the_same_size(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    original = make_source(4096)
    put(object_store, original)
    impostor = make_source(4096)

    with pytest.raises(IntegrityError):
        object_store.put_file(impostor.path, sha256=original.sha256, size=original.size)

    assert read_all(object_store, original.key) == original.data


def test_never_overwrites_with_bytes_of_another_size(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    original = make_source(4096)
    put(object_store, original)
    impostor = make_source(5000)

    with pytest.raises(IntegrityError):
        object_store.put_file(impostor.path, sha256=original.sha256, size=impostor.size)
    with pytest.raises(IntegrityError):
        object_store.put_file(impostor.path, sha256=original.sha256, size=original.size)

    assert object_store.size(original.key) == original.size
    assert read_all(object_store, original.key) == original.data


@pytest.mark.parametrize("size", [1000, 6 * MIB + 7], ids=["small", "multipart-6MiB"])
@pytest.mark.parametrize("lie", ["sha256", "size-short", "size-long"])
def test_mismatch_raises_and_leaves_nothing_visible(
    object_store: ObjectStore, make_source: MakeSource, size: int, lie: str
) -> None:
    source = make_source(size)
    claimed_sha, claimed_size = source.sha256, source.size
    if lie == "sha256":
        claimed_sha = hashlib.sha256(b"other bytes" + source.data[:10]).hexdigest()
    elif lie == "size-short":
        claimed_size = size - 1
    else:
        claimed_size = size + 1

    with pytest.raises(IntegrityError):
        object_store.put_file(source.path, sha256=claimed_sha, size=claimed_size)

    assert not object_store.exists(blob_key_for(claimed_sha))
    with pytest.raises(BlobNotFoundError):
        object_store.open(blob_key_for(claimed_sha)).close()
    # Nothing half-done blocks the honest upload that follows.
    assert put(object_store, source).size == size
    assert read_all(object_store, source.key) == source.data


def test_bad_checksum_or_size_is_rejected_before_io(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    source = make_source(10)

    bad_digests = [
        "",
        "../../../../etc/passwd",
        source.sha256.upper(),
        source.sha256[:-1],
        source.sha256 + "\n",
        f"{source.sha256[:2]}/../{source.sha256[5:]}",
    ]
    for bad in bad_digests:
        with pytest.raises(ValueError, match="SHA-256"):
            object_store.put_file(source.path, sha256=bad, size=source.size)
    with pytest.raises(ValueError, match="negative"):
        object_store.put_file(source.path, sha256=source.sha256, size=-1)


# -- missing and invalid keys --------------------------------------------------------


def test_missing_blob(object_store: ObjectStore) -> None:
    key = blob_key_for(hashlib.sha256(b"never stored").hexdigest())

    assert not object_store.exists(key)
    with pytest.raises(BlobNotFoundError):
        object_store.size(key)
    with pytest.raises(BlobNotFoundError):
        object_store.open(key)
    # Raised by the call itself, so a download can still answer 404.
    with pytest.raises(BlobNotFoundError):
        object_store.iter_chunks(key)


_SHA = hashlib.sha256(b"x").hexdigest()
INVALID_KEYS = [
    "",
    "../../etc/passwd",
    "/etc/passwd",
    f"blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/../../../../{_SHA}",
    f"blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/{_SHA}/..",
    f"blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/{_SHA.upper()}",
    f"blobs/sha256/00/00/{_SHA}",  # fan-out directories not from the digest
    f"blobs/sha256/{_SHA}",
    f"/blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/{_SHA}",
    f"blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/{_SHA}\n",
    f"blobs/sha256/{_SHA[:2]}/{_SHA[2:4]}/{_SHA}\x00",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_rejected(object_store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        object_store.exists(key)
    with pytest.raises(ValueError, match="blob key"):
        object_store.size(key)
    with pytest.raises(ValueError, match="blob key"):
        object_store.open(key)
    with pytest.raises(ValueError, match="blob key"):
        object_store.iter_chunks(key)


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_puts_of_the_same_blob(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    original = make_source(2 * MIB + 3)
    copies = [make_source(data=original.data) for _ in range(8)]
    start = threading.Barrier(len(copies))

    def upload(source: Source) -> StoredBlob:
        start.wait()
        return put(object_store, source)

    with ThreadPoolExecutor(len(copies)) as pool:
        blobs = list(pool.map(upload, copies))

    assert set(blobs) == {StoredBlob(original.key, original.sha256, original.size)}
    assert read_all(object_store, original.key) == original.data


def test_concurrent_honest_and_lying_puts(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    """Writers claiming the same checksum for other bytes never win a race."""
    original = make_source(256 * 1024)
    honest = [make_source(data=original.data) for _ in range(4)]
    lying = [make_source(original.size) for _ in range(4)]
    start = threading.Barrier(len(honest) + len(lying))

    def upload(source: Source) -> bool:
        start.wait()
        try:
            object_store.put_file(source.path, sha256=original.sha256, size=original.size)
        except IntegrityError:
            return False
        return True

    with ThreadPoolExecutor(len(honest) + len(lying)) as pool:
        outcomes = list(pool.map(upload, honest + lying))

    assert outcomes == [True] * len(honest) + [False] * len(lying)
    assert read_all(object_store, original.key) == original.data


# -- streaming -----------------------------------------------------------------------


def test_iter_chunks_streams_in_bounded_chunks(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    source = make_source(100_003)
    put(object_store, source)

    chunks = object_store.iter_chunks(source.key, chunk_size=4096)

    assert isinstance(chunks, Iterator)
    sizes = [len(chunk) for chunk in chunks]
    assert all(0 < size <= 4096 for size in sizes)
    assert sum(sizes) == source.size
    assert len(sizes) >= source.size // 4096


def test_iter_chunks_abandoned_early_releases_what_it_opened(
    object_store: ObjectStore, make_source: MakeSource
) -> None:
    source = make_source(200_000)
    put(object_store, source)

    for _ in range(40):  # more than any connection pool or sane fd budget per test
        chunks = object_store.iter_chunks(source.key, chunk_size=1024)
        assert isinstance(chunks, Generator)  # so a server can close() an abandoned download
        assert len(next(chunks)) == 1024
        chunks.close()

    assert b"".join(object_store.iter_chunks(source.key)) == source.data
