"""The object store on MinIO or any S3-compatible server: the scale-out adapter.

Blobs are objects named `blob_key_for(sha256)` in one bucket, with the SHA-256
in user metadata (`x-amz-meta-sha256`). An S3 PUT, and a multipart upload at its
completion, replaces an object atomically, so a reader never sees part of one.
S3 has no portable "create only if absent" for multipart uploads, so this adapter
never overwrites by construction instead: it uploads only when the key is absent,
and only bytes it has hashed on their way to the wire and found equal to the
key's SHA-256. The one race left, two writers uploading the same absent blob at
once, writes the same bytes twice. Deployments should still enable bucket
versioning (or object lock) as a second line of defence, and a lifecycle rule
that aborts incomplete multipart uploads left by crashed writers.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from storage.errors import (
    BlobNotFoundError,
    IntegrityError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.key_locks import KeyLocks
from storage.objectstore.base import (
    CHUNK_SIZE,
    StoredBlob,
    blob_key_for,
    check_source,
    sha256_of_key,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from minio.datatypes import Object

__all__ = ["S3ObjectStore"]

_log = logging.getLogger(__name__)

_SHA256_META = "x-amz-meta-sha256"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
# S3 error codes that mean "try again later" even though their status is 4xx.
_TRANSIENT_CODES = frozenset({"RequestTimeout", "SlowDown", "RequestTimeTooSkewed"})
# The server's disks are full: MinIO's code (with HTTP 507 Insufficient Storage).
_FULL_CODES = frozenset({"XMinioStorageFull"})
_INSUFFICIENT_STORAGE = 507


def _raise_translated(err: Exception, what: str) -> NoReturn:
    """Raise our error for a minio/urllib3/socket error (the adapter boundary)."""
    if isinstance(err, S3Error):
        if err.code in _NOT_FOUND_CODES:
            raise BlobNotFoundError(what) from err
        status = err.response.status if err.response is not None else 0
        if err.code in _FULL_CODES or status == _INSUFFICIENT_STORAGE:
            raise StorageFullError(f"{what}: {err.code}: {err.message}") from err
        if status >= 500 or err.code in _TRANSIENT_CODES:
            raise StorageUnavailableError(f"{what}: {err.code}: {err.message}") from err
        raise StorageError(f"{what}: {err.code}: {err.message}") from err
    if isinstance(err, ServerError):
        if err.status_code == _INSUFFICIENT_STORAGE:
            raise StorageFullError(f"{what}: {err}") from err
        if err.status_code >= 500:
            raise StorageUnavailableError(f"{what}: {err}") from err
        raise StorageError(f"{what}: {err}") from err
    if isinstance(err, InvalidResponseError):
        # A non-S3 answer: in practice a proxy or load balancer in front of a sick server.
        raise StorageUnavailableError(f"{what}: {err}") from err
    if isinstance(err, urllib3.exceptions.HTTPError | OSError):
        raise StorageUnavailableError(f"{what}: {err}") from err
    raise StorageError(f"{what}: {err}") from err


_LIBRARY_ERRORS = (
    S3Error,
    ServerError,
    InvalidResponseError,
    urllib3.exceptions.HTTPError,
    OSError,
)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except _LIBRARY_ERRORS as err:
        _raise_translated(err, what)


class _SourceReadError(Exception):
    """Carries an OSError from the caller's source file through minio, untranslated."""

    def __init__(self, original: OSError) -> None:
        super().__init__(str(original))
        self.original = original


class _VerifyingReader:
    """Reads exactly `size` bytes of a file for minio, hashing them as they go.

    The check runs inside the read that returns the last bytes, before minio can
    send them: a mismatch raises `IntegrityError` out of `put_object`, so the
    single PUT is never sent or the multipart upload is aborted, never completed.
    Hashing the bytes actually sent (rather than the file beforehand) also covers
    a file changed between hashing and uploading.
    """

    def __init__(self, file: BinaryIO, source: Path, sha256: str, size: int) -> None:
        self._file = file
        self._source = source
        self._sha256 = sha256
        self._size = size
        self._read = 0
        self._digest = hashlib.sha256()
        self.verified = False

    def read(self, n: int = -1) -> bytes:
        remaining = self._size - self._read
        want = remaining if n is None or n < 0 else min(n, remaining)
        data = self._read_source(want) if want > 0 else b""
        if want > 0 and not data:
            raise IntegrityError(
                f"{self._source}: {self._read} bytes, declared {self._size}; not stored"
            )
        self._digest.update(data)
        self._read += len(data)
        if self._read == self._size and not self.verified:
            if self._read_source(1):
                raise IntegrityError(
                    f"{self._source}: more than the declared {self._size} bytes; not stored"
                )
            actual = self._digest.hexdigest()
            if actual != self._sha256:
                raise IntegrityError(
                    f"{self._source}: SHA-256 {actual}, declared {self._sha256}; not stored"
                )
            self.verified = True
        return data

    def _read_source(self, n: int) -> bytes:
        try:
            return self._file.read(n)
        except OSError as err:
            raise _SourceReadError(err) from err


class _ObjectReader(io.RawIOBase):
    """A raw binary stream over a GET response that releases the connection on close."""

    def __init__(self, response: urllib3.BaseHTTPResponse, key: str) -> None:
        super().__init__()
        self._response = response
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        with _translated(f"cannot read {self._key}"):
            data = self._response.read(len(view), decode_content=False)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                _release(self._response)
            finally:
                super().close()


def _release(response: urllib3.BaseHTTPResponse) -> None:
    # minio's documented pair: close() drops an unread body, release_conn() frees the slot.
    response.close()
    response.release_conn()


class S3ObjectStore:
    """Content-addressed blobs in one bucket of MinIO or another S3-compatible server.

    `endpoint` is `host:port` (no scheme; `secure` chooses https). Every request has
    bounded time: `connect_timeout` and `read_timeout` seconds per attempt and
    `max_retries` retries (connection errors and 5xx answers, with backoff; a read
    timeout is retried once), so an unreachable server fails in seconds with
    `StorageUnavailableError`: at once if refused, after about
    (max_retries + 1) x connect_timeout if packets are dropped. `ca_certs` is a CA
    bundle for a private certificate authority (system CAs otherwise).

    With `create_bucket` the bucket is created on first use if missing (tests,
    single-node installs). Production should create it beforehand (with versioning)
    and pass `create_bucket=False`, so a mistyped bucket name fails `ping` instead
    of starting an empty store. Nothing here reads the environment.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool,
        region: str | None = None,
        create_bucket: bool = True,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        max_retries: int = 2,
        ca_certs: str | None = None,
    ) -> None:
        self._bucket = bucket
        self._bucket_ready = not create_bucket
        self._bucket_lock = threading.Lock()
        self._uploads = KeyLocks()
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=max_retries,
                # A server that accepted the request and went silent rarely answers
                # a second time: one more try, then fail instead of hanging a worker.
                read=min(1, max_retries),
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
            ),
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
        # Passing the region saves minio a GetBucketLocation round trip per bucket.
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    @property
    def bucket(self) -> str:
        """The bucket holding the blobs."""
        return self._bucket

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock, _translated(f"cannot create bucket {self._bucket}"):
            if self._bucket_ready:
                return
            if not self._client.bucket_exists(self._bucket):
                try:
                    self._client.make_bucket(self._bucket)
                except S3Error as err:
                    # Another process created it between our check and our request.
                    if err.code != "BucketAlreadyOwnedByYou":
                        raise
            self._bucket_ready = True

    def _stat(self, key: str) -> Object | None:
        try:
            with _translated(f"cannot stat {key}"):
                return self._client.stat_object(self._bucket, key)
        except BlobNotFoundError:
            return None

    # -- writing -------------------------------------------------------------------

    def put_file(self, path: Path, *, sha256: str, size: int) -> StoredBlob:
        """Store the bytes of `path` under `blob_key_for(sha256)`; see `ObjectStore.put_file`.

        The source is always read and checked against `sha256` and `size`, also when
        the blob exists, so a wrong checksum from the caller is an `IntegrityError`
        rather than a new document silently pointing at other bytes. An existing
        object of another size or recorded SHA-256 is never replaced: `IntegrityError`.
        Large files go up as a multipart upload, one part (at least 5 MiB) in memory at
        a time. Errors reading `path` itself propagate as `OSError`. Raises `ValueError`
        for a malformed `sha256` or a negative `size`.
        """
        # fullmatch: base's `$` would also accept a digest followed by a newline.
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        key = blob_key_for(sha256)
        if size < 0:
            raise ValueError(f"negative size: {size}")
        self._ensure_bucket()
        # Threads of this process putting the same blob take turns: the first uploads,
        # the rest find it there instead of sending the same bytes again.
        with self._uploads.lock(key):
            return self._put_file(path, key, sha256, size)

    def _put_file(self, path: Path, key: str, sha256: str, size: int) -> StoredBlob:
        existing = self._stat(key)
        if existing is not None:
            self._check_stored(key, existing, sha256, size)
            check_source(path, sha256, size)
            return StoredBlob(key=key, sha256=sha256, size=size)

        self._upload(path, key, sha256, size)
        stored = self._stat(key)
        if stored is None:
            raise StorageUnavailableError(f"{key} not visible after upload")
        self._check_stored(key, stored, sha256, size)
        return StoredBlob(key=key, sha256=sha256, size=size)

    def _upload(self, path: Path, key: str, sha256: str, size: int) -> None:
        """PUT the verified bytes of `path` as `key` (replaces an object there)."""
        if size == 0:
            # minio sends an empty body without calling read(): check before, not during.
            check_source(path, sha256, size)
        try:
            with path.open("rb") as file:
                reader = _VerifyingReader(file, path, sha256, size)
                with _translated(f"cannot upload {key}"):
                    self._client.put_object(
                        self._bucket,
                        key,
                        reader,  # type: ignore[arg-type]  # minio only calls read()
                        size,
                        metadata={"sha256": sha256},
                        # One part in flight: memory stays at one part, and an
                        # IntegrityError cannot race parts still uploading.
                        num_parallel_uploads=1,
                    )
        except _SourceReadError as err:
            raise err.original from None
        if not reader.verified and size > 0:
            raise IntegrityError(f"{key}: upload finished before the source was verified")

    def replace_corrupt(self, path: Path, *, sha256: str, size: int) -> bool:
        """Replace an object whose bytes no longer match its key with the verified
        bytes of `path` (the scrubber's repair; a sound or missing object is left
        alone). An S3 PUT replaces atomically; with bucket versioning the corrupt
        version is kept too. Returns whether it replaced the object."""
        key = blob_key_for(sha256)
        self._ensure_bucket()
        with self._uploads.lock(key):
            if self._stat(key) is None:
                return False
            try:
                for _ in self.iter_chunks(key, CHUNK_SIZE):
                    pass
                return False
            except IntegrityError:
                pass
            self._upload(path, key, sha256, size)
        _log.warning("object %s was corrupt and has been replaced by a verified copy", key)
        return True

    @staticmethod
    def _check_stored(key: str, obj: Object, sha256: str, size: int) -> None:
        if obj.size != size:
            _log.error("object %s has %s bytes, expected %d", key, obj.size, size)
            raise IntegrityError(
                f"{key} exists with {obj.size} bytes, expected {size}; not overwritten"
            )
        recorded = obj.metadata.get(_SHA256_META) if obj.metadata is not None else None
        if recorded is not None and recorded != sha256:
            _log.error("object %s records SHA-256 %s", key, recorded)
            raise IntegrityError(f"{key} exists with recorded SHA-256 {recorded}; not overwritten")

    # -- reading -------------------------------------------------------------------

    def _get(self, key: str) -> urllib3.BaseHTTPResponse:
        sha256_of_key(key)
        self._ensure_bucket()
        with _translated(f"cannot read {key}"):
            return self._client.get_object(self._bucket, key)

    def open(self, key: str) -> BinaryIO:
        """Open a blob as a buffered stream; closing it releases the connection.

        See `ObjectStore.open`; `ValueError` for a bad key. Read errors mid-stream
        raise `StorageUnavailableError`.
        """
        return io.BufferedReader(_ObjectReader(self._get(key), key), CHUNK_SIZE)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream a blob in chunks of at most `chunk_size` bytes.

        The request is made by this call, so `BlobNotFoundError` is raised here and
        not at the first `next()`. The connection is released when the iterator is
        exhausted or closed. The bytes are hashed on the way and the last chunk is
        held back until they are found to match the key: otherwise `IntegrityError`
        is raised in its place (a corrupt object is never served as a complete one).
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        sha256 = sha256_of_key(key)
        return self._chunks(key, self._get(key), sha256, chunk_size)

    @staticmethod
    def _chunks(
        key: str, response: urllib3.BaseHTTPResponse, sha256: str, chunk_size: int
    ) -> Iterator[bytes]:
        digest = hashlib.sha256()
        held = b""  # the chunk read last: yielded only once the next one is read
        try:
            with _translated(f"cannot read {key}"):
                for chunk in response.stream(chunk_size, decode_content=False):
                    digest.update(chunk)
                    if held:
                        yield held
                    held = chunk
        finally:
            _release(response)
        if digest.hexdigest() != sha256:
            _log.error("object %s does not match its checksum", key)
            raise IntegrityError(f"{key}: stored bytes do not match their SHA-256")
        if held:
            yield held

    def exists(self, key: str) -> bool:
        """Whether the blob exists; see `ObjectStore.exists`. `ValueError` for a bad key."""
        sha256_of_key(key)
        self._ensure_bucket()
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        """The blob's size in bytes; see `ObjectStore.size`. `ValueError` for a bad key."""
        sha256_of_key(key)
        self._ensure_bucket()
        obj = self._stat(key)
        if obj is None or obj.size is None:
            raise BlobNotFoundError(key)
        return obj.size

    def ping(self) -> None:
        """Raise `StorageUnavailableError` unless the server answers and the bucket exists."""
        try:
            self._ensure_bucket()
            with _translated(f"cannot reach bucket {self._bucket}"):
                found = self._client.bucket_exists(self._bucket)
        except StorageUnavailableError:
            raise
        except StorageError as err:
            raise StorageUnavailableError(str(err)) from err
        if not found:
            raise StorageUnavailableError(f"bucket {self._bucket} does not exist")
