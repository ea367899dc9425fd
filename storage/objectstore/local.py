"""The object store on a local (or mounted) filesystem: the embedded adapter.

A blob lives at `root / blob_key_for(sha256)`. It is written once and never
modified: `put_file` copies the source into a temporary file in the blob's own
directory while hashing it, fsyncs it, and only when size and SHA-256 match
publishes it with `os.link`, which fails instead of replacing an existing file.
Until that link a crash leaves at most a hidden `.<sha256>.*.tmp` file that no
reader ever opens, so a partially written blob is never visible under its key.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from storage.errors import (
    DISK_FULL_ERRNOS,
    BlobNotFoundError,
    IntegrityError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.objectstore.base import (
    CHUNK_SIZE,
    StoredBlob,
    blob_key_for,
    check_digest,
    check_source,
    sha256_of_key,
)

__all__ = ["LocalObjectStore"]

_log = logging.getLogger(__name__)

# Copy and hash in 1 MiB steps: memory stays bounded whatever the file size
# (a name of this module's own, so a test can shrink the copy's steps).
_CHUNK_SIZE = CHUNK_SIZE

# Blobs are immutable; read-only files guard them against a stray open-for-write
# (by us or an operator's tool). No access for "other": these are official papers.
_BLOB_MODE = 0o440

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
#: The temporary file `put_file` writes before publishing (`tempfile.mkstemp`'s name).
_TEMP_NAME = re.compile(r"\.[0-9a-f]{64}\.[A-Za-z0-9_]+\.tmp")

# Errors the operator can fix without touching code (full disk, flaky mount):
# reported as "unavailable, retry later" (a full disk or quota as `StorageFullError`,
# a kind of it); anything else is a plain StorageError.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EROFS,
        errno.ESTALE,
        errno.ETIMEDOUT,
        errno.ENOTCONN,
        errno.EAGAIN,
    }
)

# Filesystems without hard links (some SMB/FUSE mounts) answer os.link with these.
_NO_HARDLINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


def _store_error(err: OSError, what: str) -> StorageError:
    if err.errno in DISK_FULL_ERRNOS:
        return StorageFullError(f"{what}: {err}")
    if err.errno in _TRANSIENT_ERRNOS:
        return StorageUnavailableError(f"{what}: {err}")
    return StorageError(f"{what}: {err}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalObjectStore:
    """Content-addressed blobs in a directory tree on a local or mounted filesystem.

    `root` should be a dedicated directory on a filesystem that honours fsync and
    hard links (ext4, XFS, ZFS, NFSv4). With `create_root=False` a missing `root`
    is an error rather than silently created: use that in production, so that an
    unmounted volume is noticed instead of filling the disk beneath the mount point.

    Safe for concurrent use by many threads and processes on the same `root`.
    """

    def __init__(self, root: Path, *, create_root: bool = True) -> None:
        self._root = Path(root)
        #: Directories whose entry in their parent is known to be on disk.
        self._durable_dirs: set[Path] = set()
        if create_root:
            try:
                self._root.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise _store_error(err, f"cannot create object store root {self._root}") from err

    @property
    def root(self) -> Path:
        """The directory holding the `blobs/` tree."""
        return self._root

    def _path(self, key: str) -> Path:
        sha256_of_key(key)
        return self._root / key

    # -- writing -------------------------------------------------------------------

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        """Store the bytes of `path` under `blob_key_for(sha256)`; see `ObjectStore.put_file`.

        The source is always read and checked against `sha256` and `size`, even when
        the blob already exists, so a wrong checksum from the caller is reported as
        `IntegrityError` instead of silently pointing a new document at someone
        else's bytes. An existing blob of a different size is never touched: that
        is corruption for an operator to look at, reported as `IntegrityError`.
        Errors reading `path` itself (the caller's file) propagate as `OSError`.
        Raises `ValueError` for a malformed `sha256` or a negative `size`.
        """
        # fullmatch: base's `$` would also accept a digest followed by a newline.
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        key = blob_key_for(sha256)
        if size < 0:
            raise ValueError(f"negative size: {size}")
        target = self._root / key

        existing = self._existing_size(target)
        if existing is not None:
            self._check_existing(key, existing, size)
            check_source(path, sha256, size)
            self._sync_dirs(target.parent)
            return StoredBlob(key=key, sha256=sha256, size=size)

        self._make_dirs(target.parent)
        tmp = self._write_temp(path, target, sha256, size)
        try:
            self._publish(tmp, target, key, size)
        finally:
            with suppress(FileNotFoundError):
                tmp.unlink()
        self._sync_dirs(target.parent)
        return StoredBlob(key=key, sha256=sha256, size=size)

    def _make_dirs(self, directory: Path) -> None:
        """Create the fan-out directories below root, never root itself or above.

        A missing root (an unmounted volume) must fail, not be recreated on the
        disk beneath the mount point.
        """
        missing: list[Path] = []
        current = directory
        while current != self._root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                pass  # a concurrent writer made it
            except OSError as err:
                if isinstance(err, FileNotFoundError):
                    raise StorageUnavailableError(
                        f"object store root {self._root} is missing"
                    ) from err
                raise _store_error(err, f"cannot create directory {path}") from err

    def _write_temp(self, source: Path, target: Path, sha256: str, size: int) -> Path:
        """Copy `source` to a fsync'd temp file next to `target`, verifying it on the way.

        Same directory as the target, so publishing it is a link within one filesystem.
        On any failure the temp file is removed before the error propagates.
        """
        try:
            fd, name = tempfile.mkstemp(prefix=f".{sha256}.", suffix=".tmp", dir=target.parent)
        except OSError as err:
            raise _store_error(err, f"cannot create a temporary file in {target.parent}") from err
        tmp = Path(name)
        try:
            try:
                with source.open("rb") as src:
                    digest = hashlib.sha256()
                    copied = 0
                    while chunk := src.read(_CHUNK_SIZE):
                        copied += len(chunk)
                        if copied > size:
                            # Stop at once: no point copying the rest of a wrong file.
                            raise IntegrityError(
                                f"{source}: more than the declared {size} bytes; not stored"
                            )
                        digest.update(chunk)
                        _write_all(fd, chunk, tmp)
                check_digest(source, digest.hexdigest(), copied, sha256, size)
                try:
                    os.fchmod(fd, _BLOB_MODE)
                    # The bytes must be on disk before any name can point at them.
                    os.fsync(fd)
                except OSError as err:
                    raise _store_error(err, f"cannot flush {tmp}") from err
            finally:
                try:
                    os.close(fd)
                except OSError as err:  # NFS may report a failed write only here
                    raise _store_error(err, f"cannot close {tmp}") from err
        except BaseException:
            with suppress(OSError):
                tmp.unlink()
            raise
        return tmp

    def _publish(self, tmp: Path, target: Path, key: str, size: int) -> None:
        """Give the verified temp file its blob name, unless the blob already exists."""
        try:
            os.link(tmp, target)
            return
        except FileExistsError:
            # Another writer published the same blob first: theirs stays.
            self._check_existing(key, self._existing_size(target), size)
            return
        except OSError as err:
            if err.errno not in _NO_HARDLINK_ERRNOS:
                raise _store_error(err, f"cannot publish {key}") from err
        # No hard links here. rename() would replace an existing file, so look first;
        # a writer racing in between can only have written the same verified bytes.
        _log.warning("hard links unsupported under %s; publishing %s by rename", self._root, key)
        existing = self._existing_size(target)
        if existing is not None:
            self._check_existing(key, existing, size)
            return
        try:
            os.rename(tmp, target)
        except OSError as err:
            raise _store_error(err, f"cannot publish {key}") from err

    def _sync_dirs(self, directory: Path) -> None:
        """Make the blob's name durable: fsync its directory and each parent up to root.

        Done on every successful put, also when the blob was already there, because a
        concurrent writer may have linked it and not yet synced its directory. A
        directory whose own entry this process has already synced in its parent is
        remembered, so the walk stops there (directories are never removed): a put
        then costs one directory fsync, plus one per directory it created.
        """
        current = directory
        try:
            _fsync_dir(directory)  # the blob's own entry
            while current != self._root and current not in self._durable_dirs:
                parent = current.parent
                if parent == current:
                    break
                _fsync_dir(parent)  # `current`'s entry in its parent
                self._durable_dirs.add(current)
                current = parent
        except OSError as err:
            raise _store_error(err, f"cannot sync directory {current}") from err

    @staticmethod
    def _existing_size(target: Path) -> int | None:
        try:
            st = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise _store_error(err, f"cannot stat {target}") from err
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{target} exists and is not a regular file")
        return st.st_size

    @staticmethod
    def _check_existing(key: str, existing: int | None, size: int) -> None:
        if existing is None:
            # Gone between the failed link and the stat: nothing deletes blobs.
            raise StorageError(f"{key} vanished while being written")
        if existing != size:
            _log.error("blob %s exists with %d bytes, expected %d", key, existing, size)
            raise IntegrityError(
                f"{key} already exists with {existing} bytes, expected {size}; not overwritten"
            )

    # -- repair (the scrubber's) -----------------------------------------------------

    def replace_corrupt(self, path: Path, *, sha256: str, size: int) -> bool:
        """Replace a blob whose stored bytes no longer match its key with the bytes
        of `path` (verified first); the one write that replaces an existing blob.

        Only a blob found corrupt right now is replaced (re-hashed here; a sound or
        missing one is left alone: use `put_file` for a missing one). The good copy
        goes to a verified, fsync'd temporary file beside it and takes its name with
        `os.replace`, so a crash leaves the corrupt blob or the good one, never a
        mixture. Returns whether it replaced the blob.
        """
        key = blob_key_for(sha256)
        target = self._root / key
        if self._existing_size(target) is None or self._sound(key):
            return False
        tmp = self._write_temp(path, target, sha256, size)
        try:
            os.replace(tmp, target)
        except OSError as err:
            with suppress(OSError):
                tmp.unlink()
            raise _store_error(err, f"cannot replace {key}") from err
        self._sync_dirs(target.parent)
        _log.warning("blob %s was corrupt and has been replaced by a verified copy", key)
        return True

    def _sound(self, key: str) -> bool:
        try:
            for _ in self.iter_chunks(key, _CHUNK_SIZE):
                pass
        except IntegrityError:
            return False
        return True

    def clean_temporary(self, older_than: float) -> int:
        """Remove the hidden temporary files a crash left in the blob tree (those
        of `put_file` older than `older_than` seconds: a younger one may be a write
        in progress). Returns how many were removed."""
        removed = 0
        cutoff = time.time() - older_than
        for dirpath, _dirs, files in os.walk(self._root / "blobs"):
            for name in files:
                if not _TEMP_NAME.fullmatch(name):
                    continue
                path = Path(dirpath) / name
                with suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    # -- reading -------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Open a blob for reading; see `ObjectStore.open`. `ValueError` for a bad key."""
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError) as err:
            raise BlobNotFoundError(key) from err
        except OSError as err:
            raise _store_error(err, f"cannot open {key}") from err

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream a blob in chunks of at most `chunk_size` bytes.

        The blob is opened by this call, so `BlobNotFoundError` is raised here and
        not at the first `next()` (a download can still answer 404). The bytes are
        hashed on the way and the last chunk is held back until they are found to
        match the key: otherwise `IntegrityError` is raised in its place, so a
        corrupt blob is never served as a complete one (a download is cut short).
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        sha256 = sha256_of_key(key)
        return self._chunks(key, self.open(key), sha256, chunk_size)

    @staticmethod
    def _chunks(key: str, file: BinaryIO, sha256: str, chunk_size: int) -> Iterator[bytes]:
        digest = hashlib.sha256()
        held = b""  # the chunk read last: yielded only once the next one is read
        with file:
            while True:
                try:
                    chunk = file.read(chunk_size)
                except OSError as err:
                    raise _store_error(err, f"cannot read {key}") from err
                if not chunk:
                    break
                digest.update(chunk)
                if held:
                    yield held
                held = chunk
        if digest.hexdigest() != sha256:
            _log.error("blob %s does not match its checksum", key)
            raise IntegrityError(f"{key}: stored bytes do not match their SHA-256")
        if held:
            yield held

    def exists(self, key: str) -> bool:
        """Whether the blob exists; see `ObjectStore.exists`. `ValueError` for a bad key."""
        return self._existing_size(self._path(key)) is not None

    def size(self, key: str) -> int:
        """The blob's size in bytes; see `ObjectStore.size`. `ValueError` for a bad key."""
        existing = self._existing_size(self._path(key))
        if existing is None:
            raise BlobNotFoundError(key)
        return existing

    def ping(self) -> None:
        """Raise `StorageUnavailableError` unless `root` is a writable directory."""
        try:
            st = os.stat(self._root)
        except OSError as err:
            raise StorageUnavailableError(f"object store root {self._root}: {err}") from err
        if not stat.S_ISDIR(st.st_mode) or not os.access(self._root, os.W_OK | os.X_OK):
            raise StorageUnavailableError(
                f"object store root {self._root} is not a writable directory"
            )


def _write_all(fd: int, data: bytes, path: Path) -> None:
    """os.write until all of `data` is written (a write may be short)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        raise _store_error(err, f"cannot write {path}") from err
