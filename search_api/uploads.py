"""Streaming multipart uploads: the file part goes straight to a spool file, chunk by chunk.

Starlette's form parser would buffer the whole file before the route sees it and
knows no per-file limit. This parser writes the `file` part into a `SpoolWriter`
as it arrives (bounded memory; 413 the moment the limit is crossed, also for
chunked requests without a length), and keeps the small text fields. A body
that ends before its closing boundary is refused (400): a file cut short is
never stored as if it were whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from search_api.errors import ApiError
from storage.errors import StorageUnavailableError
from storage.ingest import SpoolWriter, StagedFile, UploadTooLargeError

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
# Multipart framing (boundaries, part headers, the small fields) on top of the file.
FRAMING_ALLOWANCE = MAX_FIELDS * MAX_FIELD_BYTES // 4 + 64 * 1024


@dataclass
class ParsedUpload:
    fields: dict[str, str] = field(default_factory=dict)
    staged: StagedFile | None = None
    filename: str = ""
    content_type: str = ""


def _header_params(value: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    return parse_options_header(value)


class _Collector:
    def __init__(self, spool: SpoolWriter, file_field: str) -> None:
        self.spool = spool
        self.file_field = file_field
        self.result = ParsedUpload()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._value = bytearray()
        self._saw_file = False
        #: The closing delimiter (`--BOUNDARY--`) was read: the body is complete.
        self.ended = False
        self.error: ApiError | None = None

    # python-multipart callbacks --------------------------------------------------
    def on_part_begin(self) -> None:
        self._headers = {}
        self._value = bytearray()
        self._name = ""
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        _, params = _header_params(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == self.file_field and b"filename" in params:
            if self._saw_file:
                raise ApiError(400, "bad_request", "send exactly one file")
            self._saw_file = True
            self._is_file = True
            raw = params[b"filename"]
            self.result.filename = raw.decode("utf-8", "replace")
            self.result.content_type = self._headers.get(b"content-type", b"").decode(
                "latin-1", "replace"
            )
        elif len(self.result.fields) >= MAX_FIELDS:
            raise ApiError(400, "bad_request", "too many form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.spool.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise ApiError(400, "bad_request", f"form field {self._name!r} is too long")

    def on_part_end(self) -> None:
        if not self._is_file and self._name:
            self.result.fields[self._name] = self._value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


async def receive_upload(
    request: Request, spool: SpoolWriter, *, file_field: str = "file"
) -> ParsedUpload:
    """Parse a multipart/form-data request, spooling the file part. The caller owns `spool`."""
    content_type, params = _header_params(request.headers.get("content-type", "").encode("latin-1"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with a 'file' part")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length") from None
        if declared_size > spool.max_bytes + FRAMING_ALLOWANCE:
            raise UploadTooLargeError(spool.max_bytes)

    collector = _Collector(spool, file_field)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    received = 0
    # A failure while parsing (a full spool disk, a malformed part) is answered
    # only after the rest of the body has been read and dropped: answering while
    # the client is still sending closes the connection under it, and it sees a
    # reset instead of the answer. The size limit still cuts it off (413).
    failure: Exception | None = None
    async for chunk in request.stream():
        received += len(chunk)
        if received > spool.max_bytes + FRAMING_ALLOWANCE:
            raise UploadTooLargeError(spool.max_bytes)
        if failure is None:
            try:
                parser.write(chunk)
            except (FormParserError, ApiError, StorageUnavailableError) as err:
                failure = err
    if isinstance(failure, FormParserError):
        raise ApiError(400, "bad_request", "malformed multipart body") from failure
    if failure is not None:
        raise failure
    parser.finalize()
    if not collector.ended:
        # python-multipart's finalize() does not check that the body was complete:
        # without the closing `--BOUNDARY--` the file may be cut anywhere.
        raise ApiError(
            400,
            "bad_request",
            "incomplete multipart body: it ends before the closing boundary; nothing was stored",
        )
    if not collector._saw_file:
        raise ApiError(422, "validation_error", "file: a file part named 'file' is required")
    collector.result.staged = spool.finish()
    return collector.result
