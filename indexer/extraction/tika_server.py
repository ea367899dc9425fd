"""Text extraction by an Apache Tika server (`CROSSDOC_TIKA_URL`), behind the same port.

The wire: `PUT /rmeta/body` (the body text and metadata of the file and of each embedded
document, as JSON) and `GET /version` (the cache key, and `ping`). The client is
the `tika` package (tika-python), which the customer named, used at the level
that does the job: `tika.tika.callServer`, one request with our headers, the
file streamed (requests sends a file object in blocks, never whole), our
timeouts in `requestOptions`, TLS verified, and the HTTP status handed back.
Its higher level (`tika.parser.from_file`) is not used: it writes the local
file name raw into `Content-Disposition` (a Korean name cannot be sent), merges
the metadata of every embedded document into one dict (the container's own type
and exceptions are lost), and drops the status code we tell faults by.

What is whose fault, and so what the outbox does:

- the file: a parse exception (`X-TIKA:EXCEPTION:container_exception`), an
  encrypted document, no parser for the type, answers 415, 422 and 413: an
  `Extraction` with the same status and reason the embedded extractor gives
  (`classify`);
- anything else is the server's (or its configuration's): it cannot be reached,
  does not answer within the extraction timeout (plus a grace), answers 5xx
  (overloaded, restarting its forked parser, a proxy's 502/503/504) or another
  4xx (a 400 is what Tika answers a request it refuses, e.g. a per-request
  timeout under its minimum): `ExtractionUnavailableError`, retried by the
  outbox with backoff, never `failed`.

The parse time is bounded on our side by the read timeout; the server's own
`taskTimeoutMillis` (300 s by default) restarts a forked parser that runs
away. No per-request timeout is sent (`X-Tika-Timeout-Millis` must lie between
the server's configured minimum and maximum, which the client cannot know). A
file that makes the server's parser hang or crash every time is therefore
retried with a growing delay rather than failed: the server cannot tell us
whether its forked parser died of this file or of something else.

Same behaviour as the embedded extractor where the product promises it: the
same text limit (`writeLimit` on the server, then cut at `max_text_chars`), the
same classification (`indexer.extraction.classify`), our decoding of plain text
and of legacy Korean HTML (Tika guesses KOI8-R for CP949), and our own readers
where Tika reads badly, run in a sandboxed child (`LocalReaders`) as the
embedded extractor runs them: HWP 5 and HWPX are read by
`indexer.extraction.hangul`, which reads better than the server's parsers. On
the shared corpus (tika-server-standard 3.3.2) the server got text from 10 of
43 HWP 5 files (3,009 characters in all, whitespace aside), ours from 24
(11,700), and from no file less; a password-protected HWP 5 is an unknown
OLE2 file to the server, "encrypted" to us; for HWPX the server has no parser of its own
and answers the package's part names and the raw text of every XML part
(settings, scripts, shape captions, the preview text) in file order. And
images and image-only PDFs are OCR'd with our `OcrConfig` (the server's own
Tesseract is switched off per request with `X-Tika-OCRskipOcr`, unless
`server_ocr` chooses it).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import requests

from indexer.errors import ExtractionUnavailableError
from indexer.extraction._child_handle import Reply
from indexer.extraction.base import Extraction, ExtractionStatus
from indexer.extraction.classify import (
    ZIP_TYPES,
    ParserReport,
    base_type,
    bound_metadata,
    classify,
    clean_text,
    summarize_trace,
)
from indexer.extraction.hangul import HANGUL_REVISION
from indexer.extraction.local_readers import LocalReaders
from indexer.extraction.native import child_failure, plain_text_extraction
from indexer.extraction.ocr import OcrConfig, probe_engine, wants_ocr
from indexer.extraction.sniff import (
    SNIFF_BYTES,
    is_hwp3,
    is_ole2,
    ole2_is_hwp5,
    sniff_content_type,
)
from indexer.extraction.textdecode import decode_korean_legacy, decode_text_with_fallback

# tika-python reads these when imported: client only (it would otherwise start,
# or download, a server jar on the first call), no default endpoint of use (every
# call passes the configured URL), and no log file in /tmp.
os.environ["TIKA_CLIENT_ONLY"] = "1"
os.environ["TIKA_SERVER_ENDPOINT"] = "http://127.0.0.1:1"
os.environ["TIKA_LOG_FILE"] = ""
from tika import tika as tika_client

# Also when `tika` was imported before this module, without our environment.
tika_client.TikaClientOnly = True

logger = logging.getLogger(__name__)

#: Bumped when our post-processing of the server's output changes (part of `version`).
_ADAPTER_REVISION = 1
_MIB = 1024 * 1024
_CONTENT = "X-TIKA:content"
_PARSED_BY = "X-TIKA:Parsed-By"
_CONTAINER_EXCEPTION = "X-TIKA:EXCEPTION:container_exception"
_WRITE_LIMIT = "X-TIKA:EXCEPTION:write_limit_reached"
_EMBEDDED_EXCEPTIONS = (
    "X-TIKA:EXCEPTION:embedded_exception",
    "X-TIKA:EXCEPTION:embedded_stream_exception",
)
_TEXT_PARSER = "org.apache.tika.parser.csv.TextAndCSVParser"
_HTML_PARSER = "org.apache.tika.parser.html.JSoupParser"
_GENERIC_OLE2 = "application/x-tika-msoffice"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
_WARNING = "X-TIKA:warning"
_ENCRYPTED_EXCEPTION = re.compile(r"EncryptedDocumentException")
_ENCRYPTION = re.compile(r"EncryptedDocument|encrypt", re.IGNORECASE)
#: Largest HTML file we re-decode ourselves (the whole file is read into memory).
_MAX_HTML_REDECODE_BYTES = 32 * _MIB
_UTF8_BOM = b"\xef\xbb\xbf"
#: Worst-case bytes per character, to size the prefix of a text file we decode.
_MAX_BYTES_PER_CHAR = 4
#: Characters asked for beyond `max_text_chars` (Tika counts the whitespace we strip).
_WRITE_LIMIT_SLACK = 1024
#: Seconds beyond the parse timeout the client waits for the server's answer.
_ANSWER_GRACE_SECONDS = 10.0
#: How long `version` waits before asking an unreachable server again.
_VERSION_RETRY_SECONDS = 5.0


class TikaServerExtractor:
    """`TextExtractor` over an Apache Tika server's REST API (tika-server-standard 3.x).

    Thread-safe: each call is one HTTP request (plus, for HWP 5/HWPX and OCR,
    one request to a local child from a pool of `pool_size`).

    Limits, per file: `timeout_seconds` for the server's answer (plus a grace;
    silence beyond it is the server's fault, retried),
    `max_text_chars` (sent as `writeLimit`; longer text is cut and marked
    `truncated`); `memory_limit_bytes` and `ocr` bound the local child as in
    `NativeTikaExtractor`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 5.0,
        memory_limit_bytes: int = 1024 * _MIB,
        max_text_chars: int = 1_000_000,
        pool_size: int = 1,
        ocr: OcrConfig | None = None,
        server_ocr: bool = False,
        _test_hooks: bool = False,
    ) -> None:
        """Configure the client; nothing is contacted until the first call.

        `server_ocr`: let the Tika server run its own OCR (its Tesseract, its
        settings) instead of ours; `ocr` is then unused.
        """
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Tika server URL must be http(s)://…, not {url!r}")
        if timeout_seconds <= 0 or connect_timeout_seconds <= 0 or max_text_chars < 1:
            raise ValueError("invalid extractor limits")
        self.url = url.rstrip("/")
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._max_text_chars = max_text_chars
        self._server_ocr = server_ocr
        ocr = ocr.resolved() if ocr is not None and ocr.enabled and not server_ocr else None
        ocr_tag = "server" if server_ocr else "off"
        if ocr is not None:
            probe = probe_engine(ocr)
            if not probe.available:
                logger.warning("OCR unavailable, images will have no text: %s", probe.reason)
            ocr_tag = f"{probe.tag}.{ocr.languages}"
        self._ocr_tag = ocr_tag
        self._ocr_enabled = ocr is not None
        self._local = LocalReaders(
            timeout_seconds=timeout_seconds,
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            ocr=ocr,
            pool_size=pool_size,
            _test_hooks=_test_hooks,
        )
        self._server_version = ""
        self._version_retry_at = 0.0

    # -- TextExtractor -----------------------------------------------------

    @property
    def version(self) -> str:
        """Server version, our revision, Hangul reader and OCR (cached text depends on each).

        The server's version is asked once (`GET /version`). Until the server
        has answered, the version names no server ("tika-server-unreached"), so
        no cached text matches it; nothing is extracted meanwhile (`extract`
        first needs the server's version).
        """
        # While the server is down, ask again at most every few seconds: the version
        # is read on every batch and document page, and a connect can take seconds.
        if not self._server_version and time.monotonic() >= self._version_retry_at:
            try:
                self._server_version = self._fetch_version()
            except ExtractionUnavailableError:
                self._version_retry_at = time.monotonic() + _VERSION_RETRY_SECONDS
        return self._versioned(self._server_version or "tika-server-unreached")

    @version.setter
    def version(self, value: str) -> None:  # the port declares a plain attribute
        raise AttributeError("the version of a Tika server extractor comes from the server")

    def _versioned(self, server: str) -> str:
        return f"{server}+crossdoc.{_ADAPTER_REVISION}.hangul{HANGUL_REVISION}+ocr.{self._ocr_tag}"

    def extract(self, path: Path, *, filename: str = "", declared_type: str = "") -> Extraction:
        """Extract text from the local file `path` (see `TextExtractor.extract`).

        `declared_type` is ignored (the detected type wins); the extension of
        `filename` (or of `path`) is sent as a detection hint, as the embedded
        extractor's is. Raises `FileNotFoundError` if `path` does not exist and
        `ExtractionUnavailableError` when the server or a local child cannot
        be used now.
        """
        target = Path(path).resolve(strict=True)
        if not self._server_version:
            # Every result is cached under the version: never under a guessed one.
            self._server_version = self._fetch_version()
        name = filename or target.name
        plain = plain_text_extraction(target, name, max_text_chars=self._max_text_chars)
        if plain is not None:
            return plain
        size = target.stat().st_size
        with open(target, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        sniffed = sniff_content_type(head)
        if size == 0 or is_hwp3(head):
            # Nothing to send: classify says "zero-byte file" / "HWP 3.0 …".
            report = ParserReport(size=size, hwp3=is_hwp3(head), sniffed_type=sniffed)
            return classify(report, max_text_chars=self._max_text_chars)
        if is_ole2(head) or head.startswith(_ZIP_MAGIC):
            hangul = self._local.hangul(target)
            if hangul.kind != "ok":
                return _child_failure(hangul, sniffed, self._timeout)
            if hangul.payload.get("hangul"):
                return classify(
                    _hangul_report(hangul.payload, sniffed), max_text_chars=self._max_text_chars
                )
        return self._extract_on_server(target, name, size, sniffed)

    def ping(self) -> None:
        """Raise `ExtractionUnavailableError` unless the server answers `/version`
        and a local child starts (for /readyz)."""
        self._server_version = self._fetch_version()
        self._local.ping()

    def close(self) -> None:
        """Stop the local children (the server is not ours to stop)."""
        self._local.close()

    def __enter__(self) -> TikaServerExtractor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _extract_on_server(self, target: Path, name: str, size: int, sniffed: str) -> Extraction:
        suffix = Path(name).suffix
        with open(target, "rb") as body:
            answer = self._rmeta(body, suffix if _SAFE_SUFFIX.match(suffix) else "")
        if isinstance(answer, Extraction):
            return replace(answer, content_type=sniffed)
        report = self._report(answer, target, size, sniffed)
        kind = base_type(_first(report.metadata, "Content-Type"))
        if self._ocr_enabled and wants_ocr(kind, report.text, report.metadata):
            ocr = self._local.ocr(target, kind)
            if ocr.kind != "ok":
                return _child_failure(ocr, kind or sniffed, self._timeout)
            report = _with_ocr(report, ocr.payload)
        return classify(report, max_text_chars=self._max_text_chars)

    def _rmeta(self, body: IO[bytes], suffix: str) -> list[dict[str, Any]] | Extraction:
        """The server's `/rmeta/body` list for `body`, or the `Extraction` of a refusal."""
        headers = {
            "Accept": "application/json",
            # Only the extension, as a detection hint: the name itself may not be ASCII.
            "Content-Disposition": f'attachment; filename="document{suffix}"',
            # Room for the blank lines Tika writes around the body, which we strip.
            "writeLimit": str(self._max_text_chars + _WRITE_LIMIT_SLACK),
        }
        if not self._server_ocr:
            headers["X-Tika-OCRskipOcr"] = "true"
        status, raw = self._call("put", "/rmeta/body", body, headers)
        if status == 200:
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict):
                raise ExtractionUnavailableError(
                    f"Tika server at {self.url} sent an unreadable answer (not a metadata list)"
                )
            return [item for item in answer if isinstance(item, dict)]
        message = summarize_trace(raw.decode("utf-8", "replace"), limit=400)
        if status == 415:
            return Extraction(
                ExtractionStatus.UNSUPPORTED_FORMAT, detail="the Tika server has no parser for it"
            )
        if status == 413:
            return Extraction(
                ExtractionStatus.LIMIT_EXCEEDED, detail="the Tika server refused its size (413)"
            )
        if status == 422:
            report = ParserReport(size=1, error=message or f"HTTP {status} from the Tika server")
            return classify(report, max_text_chars=self._max_text_chars)
        raise ExtractionUnavailableError(
            f"Tika server at {self.url} answered HTTP {status}: {message[:200]}"
        )

    def _call(
        self, verb: str, service: str, body: IO[bytes] | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        read_timeout = self._timeout + _ANSWER_GRACE_SECONDS
        try:
            status, raw = tika_client.callServer(
                verb,
                self.url,
                service,
                body,
                headers,
                False,
                rawResponse=True,
                requestOptions={"timeout": (self._connect_timeout, read_timeout), "verify": True},
            )
        except requests.Timeout as err:
            raise ExtractionUnavailableError(
                f"Tika server at {self.url} did not answer within {read_timeout:g} s"
            ) from err
        except requests.RequestException as err:
            raise ExtractionUnavailableError(
                f"Tika server at {self.url} cannot be reached: {type(err).__name__}"
            ) from err
        return int(status), bytes(raw or b"")

    def _fetch_version(self) -> str:
        status, raw = self._call("get", "/version", None, {"Accept": "text/plain"})
        text = raw.decode("utf-8", "replace").strip()
        if status != 200 or not text:
            raise ExtractionUnavailableError(
                f"Tika server at {self.url} answered HTTP {status} to /version"
            )
        # "Apache Tika 3.3.2" → "tika-server-3.3.2"
        return "tika-server-" + re.sub(r"[^0-9A-Za-z.+-]", "", text.rsplit(" ", 1)[-1])

    def _report(
        self, items: list[dict[str, Any]], target: Path, size: int, sniffed: str
    ) -> ParserReport:
        """A `ParserReport` (the embedded extractor's terms) from the server's list."""
        container = items[0]
        raw_metadata = {key: _values(value) for key, value in container.items() if key != _CONTENT}
        write_limited = any(_WRITE_LIMIT in item for item in items)
        raw_metadata.pop(_WRITE_LIMIT, None)
        error = (raw_metadata.pop(_CONTAINER_EXCEPTION, None) or [""])[0]
        if _ENCRYPTED_EXCEPTION.search(error.split("\n", 1)[0]):
            # Where native Tika reports encryption (a warning, then `classify` says
            # "password or DRM protected"), not as a parse failure.
            raw_metadata.setdefault(_WARNING, []).append(summarize_trace(error))
            error = ""
        limit = self._max_text_chars + _WRITE_LIMIT_SLACK
        parts: list[str] = []
        length = 0
        # The container first, then each embedded document, as the server lists them.
        for item in items:
            if length >= limit:
                break
            part = str(item.get(_CONTENT) or "")
            parts.append(part[: limit - length])
            length += len(parts[-1])
        text = clean_text("".join(parts))
        fields: dict[str, Any] = {
            "size": size,
            "text": text,
            "metadata": bound_metadata(raw_metadata),
            "error": summarize_trace(error) if error else "",
            "sniffed_type": sniffed,
            "source_truncated": write_limited or length >= limit,
        }
        tika_type = _first(raw_metadata, "Content-Type")
        kind = base_type(tika_type)
        parsers = raw_metadata.get(_PARSED_BY) or [""]
        if not error and parsers[-1] == _TEXT_PARSER:
            fields.update(self._decode_text_file(target, size, text, _charset_of(tika_type)))
        elif not error and parsers[-1] == _HTML_PARSER:
            fields.update(self._redecode_korean_html(target, size, tika_type))
        elif kind == _GENERIC_OLE2:
            with open(target, "rb") as handle:
                fields["hwp5_in_ole2"] = ole2_is_hwp5(handle.read(_MIB))
        elif kind in ZIP_TYPES:
            encrypted = sum(
                1
                for key in _EMBEDDED_EXCEPTIONS
                for message in raw_metadata.get(key, [])
                if _ENCRYPTION.search(message.split("\n", 1)[0])
            )
            if encrypted:
                # Each readable entry is an embedded document of its own in the list.
                fields["zip_entries"] = len(items) - 1 + encrypted
                fields["zip_encrypted_entries"] = encrypted
        return ParserReport(**fields)

    def _decode_text_file(
        self, target: Path, size: int, tika_text: str, tika_charset: str
    ) -> dict[str, Any]:
        """Our charset rules over the file's bytes, as the embedded extractor's child does."""
        budget = (self._max_text_chars + 1) * _MAX_BYTES_PER_CHAR
        with open(target, "rb") as handle:
            data = handle.read(budget)
        complete = size <= len(data)
        decoded = decode_text_with_fallback(
            data, complete=complete, parser_text=tika_text, parser_charset=tika_charset
        )
        limit = self._max_text_chars
        return {
            "text": clean_text(decoded.text[: limit + 1]),
            "text_charset": decoded.charset,
            "source_truncated": not complete or len(decoded.text) > limit,
        }

    def _redecode_korean_html(self, target: Path, size: int, tika_type: str) -> dict[str, Any]:
        # Without a <meta charset> Tika guesses KOI8-R for CP949 pages: send the
        # page again as UTF-8 with a byte-order mark, which its detection obeys first.
        if "charset=utf-8" in tika_type.lower().replace(" ", "") or size > _MAX_HTML_REDECODE_BYTES:
            return {}
        decoded = decode_korean_legacy(target.read_bytes())
        if decoded is None:
            return {}
        answer = self._rmeta(io.BytesIO(_UTF8_BOM + decoded.text.encode("utf-8")), ".html")
        if isinstance(answer, Extraction) or _CONTAINER_EXCEPTION in answer[0]:
            return {}  # keep the first reading
        text = clean_text("".join(str(item.get(_CONTENT) or "") for item in answer))
        return {
            "text": text[: self._max_text_chars + 1],
            "text_charset": decoded.charset,
            "source_truncated": len(text) > self._max_text_chars
            or any(_WRITE_LIMIT in item for item in answer),
        }


def _values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def _first(metadata: Any, key: str) -> str:
    values = metadata.get(key) or [""]
    return str(values[0])


def _charset_of(content_type: str) -> str:
    """`text/plain; charset=IBM500` → `IBM500` ("" when absent)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return ""


def _hangul_report(payload: dict[str, Any], sniffed: str) -> ParserReport:
    """The local child's reading of an HWP 5/HWPX file, in the classifier's terms."""
    raw_metadata = payload.get("metadata") or {}
    metadata = {
        str(key): [str(value) for value in values]
        for key, values in raw_metadata.items()
        if isinstance(values, list)
    }
    return ParserReport(
        size=int(payload.get("size", 1)),
        text=str(payload.get("text", "")),
        metadata=metadata,
        error=str(payload.get("error", "")),
        sniffed_type=sniffed,
        source_truncated=bool(payload.get("source_truncated", False)),
    )


def _with_ocr(report: ParserReport, payload: dict[str, Any]) -> ParserReport:
    """`report` with the local child's OCR outcome; its text replaces the server's
    (near) nothing when longer, as in the embedded extractor."""
    outcome = payload.get("ocr")
    if not isinstance(outcome, dict):
        return report
    text = str(payload.get("text", ""))
    used = outcome.get("status") == "ok" and len(text.strip()) > len(report.text.strip())
    report = replace(
        report,
        ocr_status=str(outcome.get("status", "")),
        ocr_detail=str(outcome.get("detail", "")),
        ocr_used=used,
    )
    if used:
        report = replace(report, text=text, source_truncated=bool(outcome.get("truncated", False)))
    return report


def _child_failure(reply: Reply, content_type: str, timeout: float) -> Extraction:
    """The `Extraction` of a file during which the local child was killed or died."""
    return child_failure(reply, content_type, timeout, "the reader used more than its memory limit")
