"""The text extraction contract: every `TextExtractor` gives the same outcome for the same file.

Legs: the embedded extractor (`NativeTikaExtractor`, always) and the Tika server
one (`TikaServerExtractor`, when `CROSSDOC_TEST_TIKA_URL` names a running
tika-server-standard 3.x; `infra/dev/engines up tika` starts one). Every file
is generated here. What may differ between the legs is declared in `GAPS`,
never passed over silently: `test_both_legs_agree` compares the two legs file
by file, field by field.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexer.extraction.base import Extraction, ExtractionStatus, TextExtractor
from indexer.extraction.native import NativeTikaExtractor
from indexer.extraction.ocr import OcrConfig
from tests import hangul_fixtures as hf
from tests.extraction_fixtures import encrypted_pdf, text_pdf
from tests.unit.test_native_extractor import (
    DOCX_TYPE,
    ELF_HEADER,
    NOTICE,
    docx_bytes,
    encrypted_zip,
)

MIB = 1024 * 1024
MAX_CHARS = 5_000
#: Tesseract's memory limit must stay under the extraction child's own (768 MiB).
OCR = OcrConfig(enabled=True, timeout_seconds=60, memory_limit_bytes=512 * 1024 * 1024)
TIKA_URL_VARIABLE = "CROSSDOC_TEST_TIKA_URL"
UHC = "똠방각하 햏자 뷁,출생신고 안내문"
HWP_TEXT = "출생신고 안내문: 한글 문서의 본문입니다."
HTML = f"<html><head><title>공지</title></head><body><p>똠방각하 {NOTICE}</p></body></html>"


@dataclass(frozen=True)
class Case:
    """One generated file and the outcome every extractor must give."""

    name: str
    make: Callable[[], bytes]
    status: ExtractionStatus
    content_type: str  # the detected type starts with this
    text: str = ""  # OK: the text (stripped) equals this, or contains it when `contains`
    contains: bool = False
    metadata: dict[str, str] | None = None  # when given, exactly this
    truncated: bool = False
    detail: str = ""  # the detail contains this


def _hwp5() -> bytes:
    return hf.hwp5_file([hf.para_text(HWP_TEXT)], title="출생신고", author="김민원")


def _hwpx() -> bytes:
    section = hf.hwpx_section(hf.hwpx_paragraph(f"<hp:t>{HWP_TEXT}</hp:t>"))
    return hf.hwpx_file([section], title="출생신고", creator="김민원")


CASES = [
    Case(
        "notice.docx",
        lambda: docx_bytes(NOTICE),
        ExtractionStatus.OK,
        DOCX_TYPE,
        NOTICE,
        metadata={
            "title": "출생신고 안내",
            "author": "김민원",
            "created": "2025-01-02T03:04:05Z",
            "language": "ko-KR",
        },
    ),
    Case("notice.pdf", lambda: text_pdf("Birth notice 2025"), ExtractionStatus.OK,
         "application/pdf", "Birth notice 2025"),
    Case("notice.html", lambda: HTML.encode(), ExtractionStatus.OK, "text/html",
         "똠방각하 " + NOTICE, contains=True),
    Case("notice-cp949.html", lambda: HTML.encode("cp949"), ExtractionStatus.OK,
         "text/html; charset=x-windows-949", "똠방각하 " + NOTICE, contains=True),
    Case("notice-utf8.txt", lambda: NOTICE.encode(), ExtractionStatus.OK,
         "text/plain; charset=UTF-8", NOTICE),
    Case("notice-cp949.txt", lambda: NOTICE.encode("cp949"), ExtractionStatus.OK,
         "text/plain; charset=EUC-KR", NOTICE),
    # Not named like text: Tika's parser reads it, our charset rules decode it.
    Case("notice-cp949.csv", lambda: f"이름,내용\n홍길동,{NOTICE}\n".encode("cp949"),
         ExtractionStatus.OK, "text/plain; charset=EUC-KR", NOTICE, contains=True),
    # Extended CP949 (UHC) Hangul, which Tika reads as KOI8-R.
    Case("uhc.csv", lambda: f"{UHC}\n".encode("cp949"), ExtractionStatus.OK,
         "text/plain; charset=x-windows-949", UHC),
    Case("notice.hwp", _hwp5, ExtractionStatus.OK, "application/x-hwp", HWP_TEXT,
         metadata={"title": "출생신고", "author": "김민원", "created": "2024-03-01T09:30:00Z"}),
    Case("notice.hwpx", _hwpx, ExtractionStatus.OK, "application/hwp+zip", HWP_TEXT),
    Case("locked.hwp", lambda: hf.hwp5_file([hf.para_text("비밀")], password=True),
         ExtractionStatus.ENCRYPTED, "application/x-hwp", detail="password"),
    Case("locked.hwpx", lambda: hf.hwpx_file([hf.hwpx_section("")], encrypted=True),
         ExtractionStatus.ENCRYPTED, "application/hwp+zip"),
    Case("locked.pdf", lambda: encrypted_pdf("Secret notice"), ExtractionStatus.ENCRYPTED,
         "application/pdf", detail="password or DRM protected"),
    Case("locked.zip", encrypted_zip, ExtractionStatus.ENCRYPTED, "application/zip",
         detail="all 2 archive entries are encrypted"),
    Case("broken.docx", lambda: docx_bytes(NOTICE)[:700], ExtractionStatus.PARSE_ERROR,
         "application/"),
    Case("empty.docx", lambda: b"", ExtractionStatus.EMPTY, "application/octet-stream",
         detail="zero-byte file"),
    Case("old.hwp", lambda: b"HWP Document File V3.00 \x1a\x01\x02" + b"\x00" * 1000,
         ExtractionStatus.UNSUPPORTED_FORMAT, "application/x-hwp", detail="HWP 3.0"),
    Case("program.pdf", lambda: ELF_HEADER, ExtractionStatus.UNSUPPORTED_FORMAT,
         "application/x-executable", detail="executable"),
    # Over the text limit, through each path: our decoding, and the parser's.
    Case("long.txt", lambda: ("가나다라 마바사 " * 2_000).encode(), ExtractionStatus.OK,
         "text/plain", "가나다라 마바사", contains=True, truncated=True),
    Case("long.docx", lambda: docx_bytes("출생신고 안내문 " * 2_000), ExtractionStatus.OK,
         DOCX_TYPE, "출생신고 안내문", contains=True, truncated=True),
]  # fmt: skip

#: Declared differences between the legs: (file, field) → why. Nothing else may differ.
GAPS: dict[tuple[str, str], str] = {}


@dataclass
class Leg:
    name: str
    extractor: TextExtractor
    results: dict[str, Extraction]


def _native() -> NativeTikaExtractor:
    return NativeTikaExtractor(
        timeout_seconds=60, memory_limit_bytes=768 * MIB, max_text_chars=MAX_CHARS,
        ocr=OCR,
    )  # fmt: skip


def _tika_server() -> TextExtractor:
    url = os.environ.get(TIKA_URL_VARIABLE)
    if not url:
        pytest.skip(f"no Tika server: set {TIKA_URL_VARIABLE} (infra/dev/engines up tika)")
    from indexer.extraction.tika_server import TikaServerExtractor

    extractor = TikaServerExtractor(
        url, timeout_seconds=60, memory_limit_bytes=768 * MIB, max_text_chars=MAX_CHARS,
        ocr=OCR,
    )  # fmt: skip
    extractor.ping()
    return extractor


_BUILDERS: dict[str, Callable[[], TextExtractor]] = {
    "native": _native,
    "tika-server": _tika_server,
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("extractor-contract")
    paths = {}
    for case in CASES:
        paths[case.name] = root / case.name
        paths[case.name].write_bytes(case.make())
    return paths


@pytest.fixture(scope="module", params=list(_BUILDERS))
def leg(request: pytest.FixtureRequest) -> Iterator[Leg]:
    extractor = _BUILDERS[request.param]()
    yield Leg(request.param, extractor, {})
    extractor.close()


def _extract(leg: Leg, files: dict[str, Path], name: str) -> Extraction:
    if name not in leg.results:
        leg.results[name] = leg.extractor.extract(files[name], filename=name)
    return leg.results[name]


def test_it_is_a_text_extractor(leg: Leg) -> None:
    assert isinstance(leg.extractor, TextExtractor)
    assert leg.extractor.version
    leg.extractor.ping()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_outcome(leg: Leg, files: dict[str, Path], case: Case) -> None:
    result = _extract(leg, files, case.name)
    assert result.status is case.status, result
    assert result.content_type.startswith(case.content_type), result
    assert case.detail in result.detail, result
    assert result.truncated is case.truncated, result
    if case.status is ExtractionStatus.OK:
        text = result.text.strip()
        assert (case.text in text) if case.contains else (text == case.text), result
        assert len(result.text) <= MAX_CHARS
        assert "\x00" not in result.text
    else:
        assert result.detail, result
        assert result.text == ""
    if case.metadata is not None:
        assert result.metadata == case.metadata


def test_long_text_is_cut_at_the_limit(leg: Leg, files: dict[str, Path]) -> None:
    for name in ("long.txt", "long.docx"):
        assert len(_extract(leg, files, name).text) == MAX_CHARS, name


def test_scan_is_read_by_our_ocr(leg: Leg, tmp_path: Path) -> None:
    """An image goes through our OCR (`OcrConfig`), whichever extractor parses the rest."""
    from tests import scans

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-kor)")
    scans.korean_font()
    path = tmp_path / "scan.png"
    path.write_bytes(scans.scan_png())
    result = leg.extractor.extract(path, filename="scan.png")
    assert result.status is ExtractionStatus.OK, result
    assert result.content_type == "image/png"
    assert result.detail.startswith("ocr"), result
    assert sum(word in result.text for word in scans.WORDS) >= 3, result.text


_FIELDS = ("status", "content_type", "text", "detail", "metadata", "truncated")


def test_both_legs_agree(files: dict[str, Path]) -> None:
    """The Tika server leg gives what the embedded one gives, but for the declared gaps."""
    if not os.environ.get(TIKA_URL_VARIABLE):
        pytest.skip(f"no Tika server: set {TIKA_URL_VARIABLE} (infra/dev/engines up tika)")
    native, server = _native(), _tika_server()
    differences = []
    try:
        for case in CASES:
            ours = native.extract(files[case.name], filename=case.name)
            theirs = server.extract(files[case.name], filename=case.name)
            for name in _FIELDS:
                mine, other = getattr(ours, name), getattr(theirs, name)
                if name == "text":
                    mine, other = mine.strip(), other.strip()
                if mine != other and (case.name, name) not in GAPS:
                    differences.append(
                        f"{case.name} {name}: native {mine!r:.200} / server {other!r:.200}"
                    )
    finally:
        native.close()
        server.close()
    assert not differences, "\n".join(differences)
