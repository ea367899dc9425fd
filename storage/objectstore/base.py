"""The object store port.

Blobs are content-addressed: the key of a blob is derived from the SHA-256 of its
bytes, so the same bytes are stored once, a key never changes meaning and a blob
is never overwritten. Every document version points at one blob; old versions
keep their blobs. Nothing in Crossdoc deletes a blob (deletes are soft, in the
catalog): losing an accepted document is the worst bug this product can have.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from storage.errors import IntegrityError

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

#: How much of a file the stores read, hash or send at a time.
CHUNK_SIZE = 1 << 20


def blob_key_for(sha256: str) -> str:
    """The object key of the blob with this SHA-256 (lower-case hex)."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


_BLOB_KEY = re.compile(r"blobs/sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")


def sha256_of_key(key: str) -> str:
    """The SHA-256 a blob key names; `ValueError` for anything that is not a blob key.

    Matching the full pattern (not just "no '..'") is what keeps a key from
    naming any path or object outside `blobs/sha256/`.
    """
    match = _BLOB_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
        raise ValueError(f"not a blob key: {key!r}")
    return match.group(3)


def check_digest(source: object, actual_sha: str, actual_size: int, sha256: str, size: int) -> None:
    """Raise `IntegrityError` unless the bytes read from `source` are those declared."""
    if actual_size != size:
        raise IntegrityError(f"{source}: {actual_size} bytes, declared {size}; not stored")
    if actual_sha != sha256:
        raise IntegrityError(f"{source}: SHA-256 {actual_sha}, declared {sha256}; not stored")


def check_source(source: Path, sha256: str, size: int) -> None:
    """Hash `source` (bounded memory) and raise `IntegrityError` unless it matches.

    Every adapter checks a file this way before it takes the file's bytes as a
    blob it already holds (or sends nothing), so a wrong declaration is refused.
    """
    digest = hashlib.sha256()
    read = 0
    with source.open("rb") as src:
        while chunk := src.read(CHUNK_SIZE):
            read += len(chunk)
            if read > size:
                raise IntegrityError(f"{source}: more than the declared {size} bytes")
            digest.update(chunk)
    check_digest(source, digest.hexdigest(), read, sha256, size)


@dataclass(frozen=True)
class StoredBlob:
    """Where a blob lives and what it is."""

    key: str
    sha256: str
    size: int


def verify_blob(store: ObjectStore, key: str) -> bool:
    """Re-hash a blob: True if its bytes match the SHA-256 in its key (for scrubbing).

    Works on every adapter, whose `iter_chunks` checks the digest after the last
    chunk. Raises `BlobNotFoundError` if the blob is missing.
    """
    try:
        for _ in store.iter_chunks(key):
            pass
    except IntegrityError:
        return False
    return True


@runtime_checkable
class ObjectStore(Protocol):
    """Durable, content-addressed storage of original document bytes."""

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        """Store the bytes of the local file `path` under `blob_key_for(sha256)`.

        Preconditions: the caller computed `sha256` and `size` while writing `path`.
        The adapter verifies both before the blob becomes visible and raises
        `IntegrityError` on a mismatch. Idempotent: if the blob already exists with
        the same size, nothing is written. Durable when it returns (fsync'd, or
        acknowledged by the S3 server). Raises `StorageUnavailableError` when the
        store cannot be reached. Never overwrites or truncates an existing blob.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """Open a blob for reading, as a binary file object the caller closes.

        Raises `BlobNotFoundError` if there is no such blob and
        `StorageUnavailableError` when the store cannot be reached.
        """
        ...

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream a blob's bytes in chunks (for downloads), closing what it opened."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob with this key exists. Raises `StorageUnavailableError`."""
        ...

    def size(self, key: str) -> int:
        """The stored size in bytes. Raises `BlobNotFoundError`, `StorageUnavailableError`."""
        ...

    def ping(self) -> None:
        """Raise `StorageUnavailableError` unless the store answers (for /readyz)."""
        ...
