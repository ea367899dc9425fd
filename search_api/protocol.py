"""The HTTP server layer (uvicorn on httptools), answering its own refusals in our JSON shape.

Some requests never reach the application: a request line the parser rejects (raw
non-ASCII bytes in the URL, a URL over httptools' 64 KiB limit) or a request head too
big to hold. uvicorn answers those itself with a plain-text `400 Invalid HTTP request
received.`; this protocol answers them as every other error, `{"error": {"code",
"message"}}`, with the status that says what is wrong (400, 414 or 431).

It also bounds the request head: httptools (llhttp) sets no limit of its own on header
size, so without one a client could make us buffer an endless header.
"""

from __future__ import annotations

import json
import logging

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from search_api.errors import error_body

log = logging.getLogger(__name__)

#: The longest request target (path and query) we read; httptools cannot parse longer.
MAX_REQUEST_TARGET_BYTES = 65_535
#: The largest request head (request line and headers). Large enough for a 100 KB
#: Authorization header to reach the token check and get its clean 401.
MAX_REQUEST_HEAD_BYTES = 160 * 1024

_BAD_REQUEST = (
    400,
    "bad_request",
    "HTTP 요청 줄이나 헤더가 올바르지 않습니다. URL의 한글 등 ASCII 밖의 문자는 퍼센트 "
    "인코딩해야 합니다 · malformed HTTP request line or header (characters outside ASCII "
    "in a URL must be percent-encoded, e.g. curl -G --data-urlencode 'q=출생신고')",
)
_TARGET_TOO_LONG = (
    414,
    "uri_too_long",
    f"주소(URL)가 {MAX_REQUEST_TARGET_BYTES}바이트보다 깁니다. 긴 검색어는 줄여 주십시오 · "
    f"the URL is longer than {MAX_REQUEST_TARGET_BYTES} bytes",
)
_HEAD_TOO_LARGE = (
    431,
    "request_header_fields_too_large",
    f"요청 줄과 헤더가 {MAX_REQUEST_HEAD_BYTES}바이트보다 큽니다 · "
    f"the request line and headers are larger than {MAX_REQUEST_HEAD_BYTES} bytes",
)


class _Refused(Exception):
    """Raised from a parser callback to stop reading the request."""


class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with server-layer refusals in the JSON error shape."""

    # Bytes received while the current request head was incomplete; None outside a head.
    _head_received: int | None = None
    # Bytes of the current request head's URL and headers, as the parser reports them.
    _head_parsed = 0
    # Why the request in hand is refused, when a callback decides it; else the generic 400.
    _refusal: tuple[int, str, str] | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_received = 0
        self._head_parsed = 0
        self._refusal = None

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_parsed += len(url)
        if len(self.url) > MAX_REQUEST_TARGET_BYTES:
            # httptools would refuse it anyway, later and with an unspecific error.
            self._refusal = _TARGET_TOO_LONG
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4
        if self._head_parsed > MAX_REQUEST_HEAD_BYTES:
            self._refusal = _HEAD_TOO_LARGE
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_received = None
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_received is None or self.transport.is_closing():
            return
        # Still inside a request head after this chunk: the parser holds its partial
        # header, which the callbacks have not counted yet. Bound that too. When one
        # chunk ends a previous (pipelined) request and starts this one, this counts a
        # little too much: the limit is generous enough for that not to matter.
        self._head_received += len(data)
        if self._head_received > MAX_REQUEST_HEAD_BYTES:
            self._refusal = _HEAD_TOO_LARGE
            self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        """Answer a request the server layer refuses (uvicorn calls this on parser errors)."""
        status, code, message = self._refusal or _BAD_REQUEST
        self._refusal = None
        self._head_received = None
        if status != 400:
            log.warning("request refused: %s", message)
        body = json.dumps(error_body(code, message), ensure_ascii=False, separators=(",", ":"))
        body_bytes = body.encode("utf-8")
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body_bytes)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body_bytes,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
