"""S3ObjectStore beyond the shared contract: unreachable and failing servers, metadata,
existing objects it must not touch, aborted multipart uploads.

Faults are real servers on 127.0.0.1 (a closed port, a socket that never answers,
an HTTP server answering errors) and moto for S3 behaviour; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from minio import Minio

from storage.errors import (
    BlobNotFoundError,
    IntegrityError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.objectstore.base import blob_key_for, verify_blob
from storage.objectstore.s3 import S3ObjectStore
from tests.moto_server import moto_s3_server

MIB = 1 << 20
KEYS = ("crossdoc-test", "crossdoc-test-secret")
SOME_KEY = blob_key_for(hashlib.sha256(b"anything").hexdigest())


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket() -> str:
    return f"crossdoc-unit-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def store(moto_endpoint: str, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(moto_endpoint, *KEYS, bucket, secure=False, region="us-east-1")


@pytest.fixture
def raw(moto_endpoint: str) -> Minio:
    """A plain client, to plant or inspect objects behind the adapter's back."""
    return Minio(moto_endpoint, access_key=KEYS[0], secret_key=KEYS[1], secure=False)


def write_source(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / f"source-{uuid.uuid4().hex[:8]}.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def plant(raw: Minio, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
    if not raw.bucket_exists(bucket):
        raw.make_bucket(bucket)
    raw.put_object(bucket, key, io.BytesIO(data), len(data), metadata=metadata)  # type: ignore[arg-type]


# -- servers that cannot help ---------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def operations(tmp_path: Path) -> dict[str, Callable[[S3ObjectStore], Any]]:
    source, sha = write_source(tmp_path, b"hello")
    return {
        "ping": lambda s: s.ping(),
        "exists": lambda s: s.exists(SOME_KEY),
        "size": lambda s: s.size(SOME_KEY),
        "open": lambda s: s.open(SOME_KEY),
        "iter_chunks": lambda s: s.iter_chunks(SOME_KEY),
        "put_file": lambda s: s.put_file(source, sha256=sha, size=5),
    }


OPERATIONS = ["ping", "exists", "size", "open", "iter_chunks", "put_file"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_unreachable_endpoint_is_unavailable_within_seconds(tmp_path: Path, operation: str) -> None:
    store = S3ObjectStore(f"127.0.0.1:{closed_port()}", *KEYS, "crossdoc", secure=False)

    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        operations(tmp_path)[operation](store)
    assert time.monotonic() - started < 5


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_server_that_never_answers_times_out(tmp_path: Path, silent_endpoint: str) -> None:
    store = S3ObjectStore(
        silent_endpoint, *KEYS, "crossdoc", secure=False, read_timeout=0.5, max_retries=1
    )

    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        store.exists(SOME_KEY)
    assert time.monotonic() - started < 5


class _ErrorServer(ThreadingHTTPServer):
    status: int
    body: bytes
    requests: int


class _ErrorHandler(BaseHTTPRequestHandler):
    server: _ErrorServer

    def _answer(self) -> None:
        self.server.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.server.body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _s3_error(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{code}</Message><Resource>/</Resource><RequestId>1</RequestId></Error>"
    ).encode()


@pytest.fixture
def error_server() -> Iterator[_ErrorServer]:
    server = _ErrorServer(("127.0.0.1", 0), _ErrorHandler)
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _store_on(server: _ErrorServer) -> S3ObjectStore:
    host, port = server.server_address[:2]
    return S3ObjectStore(
        f"{host!s}:{port}", *KEYS, "crossdoc", secure=False, region="us-east-1", max_retries=2
    )


@pytest.mark.parametrize("operation", ["exists", "open", "put_file"])
def test_server_errors_are_unavailable_after_bounded_retries(
    tmp_path: Path, error_server: _ErrorServer, operation: str
) -> None:
    error_server.status, error_server.body = 503, _s3_error("ServiceUnavailable")
    store = _store_on(error_server)

    with pytest.raises(StorageUnavailableError):
        operations(tmp_path)[operation](store)
    assert 1 < error_server.requests <= 3  # retried, and no more than max_retries


@pytest.mark.parametrize("operation", ["open", "put_file"])
def test_refusals_are_storage_errors_not_unavailability(
    tmp_path: Path, error_server: _ErrorServer, operation: str
) -> None:
    error_server.status, error_server.body = 403, _s3_error("AccessDenied")
    store = _store_on(error_server)

    with pytest.raises(StorageError) as raised:
        operations(tmp_path)[operation](store)
    assert not isinstance(raised.value, StorageUnavailableError | BlobNotFoundError)


def test_a_full_server_is_storage_full(tmp_path: Path, error_server: _ErrorServer) -> None:
    # MinIO answers a write to full disks with 507 XMinioStorageFull.
    error_server.status, error_server.body = 507, _s3_error("XMinioStorageFull")

    with pytest.raises(StorageFullError):
        operations(tmp_path)["put_file"](_store_on(error_server))


def test_ping_reports_refusal_as_not_ready(error_server: _ErrorServer) -> None:
    error_server.status, error_server.body = 403, _s3_error("AccessDenied")

    with pytest.raises(StorageUnavailableError):
        _store_on(error_server).ping()


# -- on an S3 server (moto) -----------------------------------------------------------


def test_sha256_is_recorded_in_object_metadata(
    store: S3ObjectStore, raw: Minio, bucket: str, tmp_path: Path
) -> None:
    source, sha = write_source(tmp_path, b"recorded")
    blob = store.put_file(source, sha256=sha, size=8)

    obj = raw.stat_object(bucket, blob.key)
    assert obj.metadata is not None
    assert obj.metadata.get("x-amz-meta-sha256") == sha


def test_existing_object_of_another_size_is_not_overwritten(
    store: S3ObjectStore, raw: Minio, bucket: str, tmp_path: Path
) -> None:
    source, sha = write_source(tmp_path, b"the real bytes")
    key = blob_key_for(sha)
    plant(raw, bucket, key, b"damaged", {})

    with pytest.raises(IntegrityError, match="not overwritten"):
        store.put_file(source, sha256=sha, size=14)

    assert raw.get_object(bucket, key).read() == b"damaged"


def test_existing_object_recording_another_sha256_is_not_overwritten(
    store: S3ObjectStore, raw: Minio, bucket: str, tmp_path: Path
) -> None:
    source, sha = write_source(tmp_path, b"the real bytes")
    key = blob_key_for(sha)
    plant(raw, bucket, key, b"other  bytes!!", {"sha256": "0" * 64})

    with pytest.raises(IntegrityError, match="not overwritten"):
        store.put_file(source, sha256=sha, size=14)

    assert raw.get_object(bucket, key).read() == b"other  bytes!!"


def test_corruption_is_detected_by_verify_and_by_streaming(
    store: S3ObjectStore, raw: Minio, bucket: str
) -> None:
    data = os.urandom(300_000)
    key = blob_key_for(hashlib.sha256(data).hexdigest())
    rotten = bytearray(data)
    rotten[123_456] ^= 0xFF
    plant(raw, bucket, key, bytes(rotten), {})

    assert not verify_blob(store, key)
    with pytest.raises(IntegrityError):
        b"".join(store.iter_chunks(key))
    # The last chunk is held back until the digest is checked: a download of a
    # corrupt blob is cut short, never completed with the wrong bytes.
    received: list[bytes] = []
    with pytest.raises(IntegrityError):
        received.extend(store.iter_chunks(key, 65_536))  # keeps what came before the error
    assert 0 < sum(map(len, received)) < len(data)


def test_failed_multipart_upload_is_aborted(
    store: S3ObjectStore, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    source, _ = write_source(tmp_path, os.urandom(11 * MIB))  # three parts
    claimed = hashlib.sha256(b"not these bytes").hexdigest()

    with pytest.raises(IntegrityError):
        store.put_file(source, sha256=claimed, size=11 * MIB)

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{moto_endpoint}",
        aws_access_key_id=KEYS[0],
        aws_secret_access_key=KEYS[1],
        region_name="us-east-1",
    )
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not store.exists(blob_key_for(claimed))


def test_missing_bucket_without_create_bucket_fails_ping(moto_endpoint: str, bucket: str) -> None:
    store = S3ObjectStore(
        moto_endpoint, *KEYS, bucket, secure=False, region="us-east-1", create_bucket=False
    )

    with pytest.raises(StorageUnavailableError, match="does not exist"):
        store.ping()


def test_bucket_is_created_on_first_use(store: S3ObjectStore, raw: Minio, bucket: str) -> None:
    assert not raw.bucket_exists(bucket)
    store.ping()
    assert raw.bucket_exists(bucket)


def test_open_releases_the_connection_on_close(store: S3ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    source, sha = write_source(tmp_path, data)
    blob = store.put_file(source, sha256=sha, size=len(data))

    for _ in range(40):  # more than the connection pool holds
        with store.open(blob.key) as file:
            assert file.read(10) == data[:10]

    with store.open(blob.key) as file:
        assert file.read() == data


def test_threads_putting_the_same_blob_upload_it_once(
    store: S3ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(MIB)
    sources = [write_source(tmp_path, data) for _ in range(8)]
    real_put = Minio.put_object
    uploads = 0

    def counting_put(self: Minio, *args: Any, **kwargs: Any) -> Any:
        nonlocal uploads
        uploads += 1
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(Minio, "put_object", counting_put)
    start = threading.Barrier(len(sources))

    def upload(source: tuple[Path, str]) -> str:
        start.wait()
        return store.put_file(source[0], sha256=source[1], size=len(data)).key

    with ThreadPoolExecutor(len(sources)) as pool:
        keys = set(pool.map(upload, sources))

    assert keys == {blob_key_for(sources[0][1])}
    assert uploads == 1
