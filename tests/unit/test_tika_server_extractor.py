"""TikaServerExtractor: what is the file's fault (a status) and what is the server's (retried).

The wire is faked here by a small HTTP server answering what a Tika server can
answer when it is in trouble (503 while its forked parser restarts, 5xx, a
proxy's garbage, silence), which a real server cannot be made to do on demand.
The real server's answers are checked in tests/contract/test_extractor_contract.py
and tests/engines/test_tika_server_faults.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from indexer.errors import ExtractionUnavailableError
from indexer.extraction import tika_server
from indexer.extraction.base import ExtractionStatus
from indexer.extraction.tika_server import TikaServerExtractor
from tests.unit.test_native_extractor import docx_bytes


class FakeTika:
    """Answers `GET /version` with `version`, every other request with the next
    (status, body, delay) of `answers` (the last one repeats)."""

    def __init__(self) -> None:
        self.version: tuple[int, bytes] = (200, b"Apache Tika 3.3.2")
        self.answers: list[tuple[int, bytes, float]] = [(200, b"[{}]", 0.0)]
        self.requests: list[tuple[str, str, dict[str, str], int]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), len(body)))
                if self.path == "/version":
                    status, payload, delay = (*fake.version, 0.0)
                else:
                    status, payload, delay = (
                        fake.answers.pop(0) if len(fake.answers) > 1 else fake.answers[0]
                    )
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_PUT = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeTika]:
    server = FakeTika()
    yield server
    server.close()


@pytest.fixture
def docx(tmp_path: Path) -> Path:
    path = tmp_path / "notice.docx"
    path.write_bytes(docx_bytes("출생신고 안내문"))
    return path


def _extractor(url: str, **options: object) -> TikaServerExtractor:
    return TikaServerExtractor(url, timeout_seconds=5, ocr=None, **options)  # type: ignore[arg-type]


def _rmeta(**fields: object) -> bytes:
    return json.dumps([fields]).encode()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_tika_client_never_starts_or_downloads_a_server() -> None:
    assert tika_server.tika_client.TikaClientOnly


def test_an_unreachable_server_is_transient(docx: Path) -> None:
    extractor = _extractor(f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ExtractionUnavailableError, match="cannot be reached"):
        extractor.extract(docx)
    with pytest.raises(ExtractionUnavailableError):
        extractor.ping()
    assert extractor.version.startswith("tika-server-unreached+")  # matches no cached text
    assert time.monotonic() - started < 10
    extractor.close()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 404, 400, 401, 403])
def test_server_trouble_is_transient(fake: FakeTika, docx: Path, status: int) -> None:
    fake.answers = [(status, b"Service Unavailable", 0.0)]
    with _extractor(fake.url) as extractor, pytest.raises(ExtractionUnavailableError):
        extractor.extract(docx)


def test_an_unreadable_answer_is_transient(fake: FakeTika, docx: Path) -> None:
    fake.answers = [(200, b"<html>proxy error</html>", 0.0)]
    with _extractor(fake.url) as extractor, pytest.raises(ExtractionUnavailableError):
        extractor.extract(docx)


def test_no_answer_within_the_timeout_is_transient(
    fake: FakeTika, docx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tika_server, "_ANSWER_GRACE_SECONDS", 0.0)
    fake.answers = [(200, _rmeta(), 1.5)]
    extractor = TikaServerExtractor(fake.url, timeout_seconds=0.5, ocr=None)
    with pytest.raises(ExtractionUnavailableError, match="did not answer"):
        extractor.extract(docx)
    extractor.close()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, b"org.apache.tika.exception.EncryptedDocumentException: bad password",
         ExtractionStatus.ENCRYPTED),
        (422, b"org.apache.tika.exception.TikaException: Unexpected RuntimeException",
         ExtractionStatus.PARSE_ERROR),
        (415, b"", ExtractionStatus.UNSUPPORTED_FORMAT),
        (413, b"", ExtractionStatus.LIMIT_EXCEEDED),
    ],
)  # fmt: skip
def test_refusals_of_the_file_are_permanent(
    fake: FakeTika, docx: Path, status: int, body: bytes, expected: ExtractionStatus
) -> None:
    fake.answers = [(status, body, 0.0)]
    with _extractor(fake.url) as extractor:
        result = extractor.extract(docx)
    assert result.status is expected, result
    assert result.detail


def test_a_parse_exception_is_a_parse_error_with_its_reason(fake: FakeTika, docx: Path) -> None:
    trace = "org.apache.tika.exception.TikaException: TIKA-198: Illegal IOException\n\tat x.y(Z)"
    answer = {"Content-Type": "application/pdf", "X-TIKA:EXCEPTION:container_exception": trace}
    fake.answers = [(200, _rmeta(**answer), 0.0)]
    with _extractor(fake.url) as extractor:
        result = extractor.extract(docx)
    assert result.status is ExtractionStatus.PARSE_ERROR
    assert result.detail == "TIKA-198: Illegal IOException"


def test_what_is_sent(fake: FakeTika, tmp_path: Path) -> None:
    """The file streamed whole, the limits, only the extension as a name, the server's OCR off."""
    path = tmp_path / "보고서.pdf"
    path.write_bytes(b"%PDF-1.4 " + b"x" * 300_000)
    fake.answers = [(200, _rmeta(**{"Content-Type": "application/pdf",
                                    "X-TIKA:content": "본문 " * 10}), 0.0)]  # fmt: skip
    with TikaServerExtractor(fake.url, timeout_seconds=7, max_text_chars=2000) as extractor:
        result = extractor.extract(path, filename="보고서.pdf")
    assert result.status is ExtractionStatus.OK
    verb, service, headers, size = fake.requests[-1]
    assert (verb, service, size) == ("PUT", "/rmeta/body", path.stat().st_size)
    assert headers["Content-Disposition"] == 'attachment; filename="document.pdf"'
    assert headers["X-Tika-OCRskipOcr"] == "true"
    assert not any("timeout" in name.lower() for name in headers)  # see the module docstring
    assert int(headers["writeLimit"]) >= 2001


def test_the_version_names_the_server(fake: FakeTika) -> None:
    with _extractor(fake.url) as extractor:
        assert extractor.version.startswith("tika-server-3.3.2+crossdoc.")
    fake.version = (503, b"")
    with _extractor(fake.url) as extractor:
        assert extractor.version.startswith("tika-server-unreached+")
        with pytest.raises(ExtractionUnavailableError):  # nothing cached under a guess
            extractor.extract(Path(__file__))
        fake.version = (200, b"Apache Tika 3.3.2")
        extractor.extract(Path(__file__), filename="test.py")
        assert extractor.version.startswith("tika-server-3.3.2+")


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        TikaServerExtractor("tika:9998")
    with pytest.raises(ValueError, match="limits"):
        TikaServerExtractor("http://tika:9998", timeout_seconds=0)


def test_the_setting_selects_the_tika_server_extractor(tmp_path: Path) -> None:
    from crossdoc.settings import Settings
    from crossdoc.wiring.core import ConfigurationError, build_extractor
    from indexer.extraction.native import NativeTikaExtractor

    chosen = build_extractor(
        Settings(data_dir=tmp_path, tika_url="http://127.0.0.1:9998", extraction_timeout_seconds=9)
    )
    assert isinstance(chosen, TikaServerExtractor)
    assert chosen.url == "http://127.0.0.1:9998"
    chosen.close()
    embedded = build_extractor(Settings(data_dir=tmp_path))  # the default stays embedded
    assert isinstance(embedded, NativeTikaExtractor)
    embedded.close()
    with pytest.raises(ConfigurationError, match="CROSSDOC_TIKA_URL"):
        build_extractor(Settings(data_dir=tmp_path, tika_url="tika:9998"))


def test_a_hanging_hangul_reader_is_killed_and_replaced(fake: FakeTika, tmp_path: Path) -> None:
    """Our readers run in a sandboxed child with the extraction timeout, as in the embedded one."""
    from tests import hangul_fixtures as hf

    section = hf.hwpx_section(hf.hwpx_paragraph("<hp:t>출생신고 안내문</hp:t>"))
    package = hf.hwpx_file([section])
    hanging = tmp_path / "__crossdoc_hook_sleep.hwpx"
    hanging.write_bytes(package)
    ordinary = tmp_path / "notice.hwpx"
    ordinary.write_bytes(package)
    extractor = TikaServerExtractor(fake.url, timeout_seconds=1, ocr=None, _test_hooks=True)
    try:
        result = extractor.extract(hanging)
        assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
        assert result.detail.startswith("timeout")
        result = extractor.extract(ordinary)
        assert result.status is ExtractionStatus.OK, result
        assert result.text == "출생신고 안내문"
        assert result.content_type == "application/hwp+zip"
        assert all(request[1] == "/version" for request in fake.requests)  # never sent to Tika
    finally:
        extractor.close()
