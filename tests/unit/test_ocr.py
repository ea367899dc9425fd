"""OCR of rendered scans through the real extractor (child process, tesseract, poppler).

The scans are drawn by the tests (tests/scans.py) with a Korean font; every
assertion goes through `NativeTikaExtractor.extract`, so the child, its limits
and the reply path are exercised for real.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.core import build_extractor
from indexer.extraction.base import Extraction, ExtractionStatus
from indexer.extraction.classify import ParserReport, classify
from indexer.extraction.native import NativeTikaExtractor
from indexer.extraction.ocr import OcrConfig, probe_engine, wants_ocr
from tests import scans

pytest.importorskip("iscc_tika", reason="the embedded extractor needs the iscc-tika package")
pytest.importorskip("PIL", reason="the tests draw their scans with Pillow")

MIB = 1024 * 1024
HAVE_TESSERACT = probe_engine(OcrConfig()).available
HAVE_POPPLER = shutil.which("pdftoppm") is not None and shutil.which("pdfinfo") is not None
needs_tesseract = pytest.mark.skipif(
    not HAVE_TESSERACT,
    reason=f"OCR unavailable ({probe_engine(OcrConfig()).reason}): "
    "apt-get install tesseract-ocr tesseract-ocr-kor",
)
needs_poppler = pytest.mark.skipif(
    not HAVE_POPPLER, reason="pdftoppm/pdfinfo missing: apt-get install poppler-utils"
)


@pytest.fixture(scope="module")
def extractor() -> Iterator[NativeTikaExtractor]:
    with NativeTikaExtractor(timeout_seconds=60, ocr=OcrConfig()) as pooled:
        yield pooled


def extract(extractor: NativeTikaExtractor, path: Path, data: bytes) -> Extraction:
    path.write_bytes(data)
    return extractor.extract(path)


def assert_scan_read(result: Extraction) -> None:
    assert result.status is ExtractionStatus.OK, result
    assert result.status_detail == "ocr", result
    for word in scans.WORDS:
        assert word in result.text, (word, result.text)


@needs_tesseract
def test_png_scan_is_read_in_korean_and_english(
    extractor: NativeTikaExtractor, tmp_path: Path
) -> None:
    result = extract(extractor, tmp_path / "scan.png", scans.scan_png())
    assert result.content_type == "image/png"
    assert_scan_read(result)


@needs_tesseract
def test_jpeg_scan_is_read(extractor: NativeTikaExtractor, tmp_path: Path) -> None:
    jpeg = scans.image_bytes(scans.render_page(), "JPEG", quality=85)
    result = extract(extractor, tmp_path / "사진.jpg", jpeg)
    assert result.content_type == "image/jpeg"
    assert_scan_read(result)


@needs_tesseract
@needs_poppler
def test_image_only_pdf_is_read(extractor: NativeTikaExtractor, tmp_path: Path) -> None:
    result = extract(extractor, tmp_path / "scan.pdf", scans.scan_pdf())
    assert result.content_type == "application/pdf"
    assert_scan_read(result)


@needs_tesseract
@needs_poppler
def test_pdf_with_a_text_layer_is_not_ocrd(extractor: NativeTikaExtractor, tmp_path: Path) -> None:
    result = extract(extractor, tmp_path / "text.pdf", scans.text_pdf("Crossdoc text layer"))
    assert result.status is ExtractionStatus.OK, result
    assert result.text == "Crossdoc text layer"
    assert result.status_detail == ""


@needs_tesseract
def test_multi_page_tiff_is_read_up_to_the_page_cap(tmp_path: Path) -> None:
    tiff = scans.scan_tiff([(scans.TITLE,), (scans.ENGLISH,), (scans.BODY,)])
    with NativeTikaExtractor(ocr=OcrConfig(max_pages=2)) as capped:
        result = extract(capped, tmp_path / "pages.tiff", tiff)
    assert result.status is ExtractionStatus.OK, result
    assert "출생통보제" in result.text and "notification" in result.text
    assert "의료기관은" not in result.text  # page 3 is past the cap
    assert result.truncated
    assert result.status_detail == "ocr (2 of 3 pages)"


@needs_tesseract
def test_decompression_bomb_fails_with_a_reason_and_the_extractor_lives_on(
    extractor: NativeTikaExtractor, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = extract(extractor, tmp_path / "bomb.png", scans.bomb_png())
    assert time.monotonic() - started < 20
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
    assert result.status_detail == (
        "limit_exceeded: image too large for OCR: 100000×100000 pixels (limit 50,000,000)"
    )
    assert_scan_read(extract(extractor, tmp_path / "after.png", scans.scan_png()))


@needs_tesseract
@needs_poppler
def test_poster_sized_pdf_page_is_not_rendered_at_full_resolution(tmp_path: Path) -> None:
    # The scan's 1800-pixel width at 1 dpi: a page 1800 inches wide, which at
    # 300 dpi would be billions of pixels. It must end quickly, without text.
    page = scans.render_page()
    path = tmp_path / "poster.pdf"
    page.save(path, format="PDF", resolution=1.0)
    with NativeTikaExtractor(ocr=OcrConfig(max_pixels=2_000_000)) as small:
        started = time.monotonic()
        result = small.extract(path)
    assert time.monotonic() - started < 30
    assert result.status is ExtractionStatus.EMPTY, result


@needs_tesseract
def test_ocr_time_budget_ends_in_limit_exceeded(tmp_path: Path) -> None:
    big = scans.render_page(tuple(scans.BODY for _ in range(40)), size=40)
    with NativeTikaExtractor(ocr=OcrConfig(timeout_seconds=1.2)) as hurried:
        result = extract(hurried, tmp_path / "long.png", scans.image_bytes(big, "PNG"))
        assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
        assert result.status_detail == "limit_exceeded: timeout: OCR took more than 1.2 s"
        # The child replied by itself, within its budget: the next file works.
        assert extract(hurried, tmp_path / "small.png", scans.scan_png()).status_detail == "ocr"


@needs_tesseract
def test_ocr_memory_limit_ends_in_limit_exceeded(tmp_path: Path) -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) missing: OCR subprocesses inherit the child's limit")
    with NativeTikaExtractor(ocr=OcrConfig(memory_limit_bytes=20 * MIB)) as starved:
        result = extract(starved, tmp_path / "scan.png", scans.scan_png())
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
    assert result.status_detail == "limit_exceeded: memory: OCR needed more than 20 MiB"


def test_ocr_disabled_by_setting_gives_no_text(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", ocr=False)
    off = build_extractor(settings)
    try:
        assert isinstance(off, NativeTikaExtractor) and off.ocr is None
        assert off.version.endswith("+ocr.off")
        result = extract(off, tmp_path / "scan.png", scans.scan_png())
    finally:
        off.close()
    assert result.status is ExtractionStatus.EMPTY, result
    assert result.text == ""
    assert result.status_detail == "empty"


def test_settings_turn_ocr_on_with_korean_by_default(tmp_path: Path) -> None:
    on = build_extractor(Settings(data_dir=tmp_path / "data"))
    try:
        assert isinstance(on, NativeTikaExtractor) and on.ocr is not None
        assert on.ocr.languages == "kor+eng"
        assert "+ocr." in on.version and on.version.endswith(".kor+eng")
    finally:
        on.close()


def test_missing_tesseract_is_reported_not_raised(tmp_path: Path) -> None:
    config = OcrConfig(tesseract=str(tmp_path / "no-such-tesseract"))
    with NativeTikaExtractor(ocr=config) as without:
        assert "+ocr.unavailable." in without.version
        result = extract(without, tmp_path / "scan.png", scans.scan_png())
        assert result.status is ExtractionStatus.EMPTY, result
        assert result.status_detail == "empty: ocr unavailable: tesseract is not installed"
        # Everything else still works.
        text = extract(without, tmp_path / "a.pdf", scans.text_pdf("still extracted"))
        assert text.status is ExtractionStatus.OK and text.text == "still extracted"


@needs_tesseract
def test_missing_language_data_is_reported(tmp_path: Path) -> None:
    with NativeTikaExtractor(ocr=OcrConfig(languages="kor+zzz")) as without:
        result = extract(without, tmp_path / "scan.png", scans.scan_png())
    assert result.status_detail == "empty: ocr unavailable: no tesseract data for zzz"


def test_which_files_want_ocr() -> None:
    assert wants_ocr("image/png", "", {})
    assert wants_ocr("image/tiff", "", {})
    assert not wants_ocr("text/plain", "", {})
    assert wants_ocr("application/pdf", "\n\n", {"xmpTPg:NPages": ["1"]})
    # A page number per page is "nearly empty"; a real text layer is not.
    assert wants_ocr("application/pdf", "1\n2\n3", {"xmpTPg:NPages": ["3"]})
    one_page = {"xmpTPg:NPages": ["1"]}
    assert not wants_ocr("application/pdf", "출생통보제 시행 안내문입니다", one_page)
    assert not wants_ocr("application/pdf", "x" * 100, {"xmpTPg:NPages": ["bogus"]})


def test_invalid_ocr_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="languages"):
        OcrConfig(languages="kor; rm -rf /")
    with pytest.raises(ValueError, match="limits"):
        OcrConfig(max_pages=0)


@needs_tesseract
def test_sideways_phone_photo_is_turned_upright_by_its_exif_orientation(
    extractor: NativeTikaExtractor, tmp_path: Path
) -> None:
    from PIL import Image

    sideways = scans.render_page().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "photo.jpg"
    sideways.save(path, format="JPEG", quality=90, exif=exif.tobytes(), dpi=(300, 300))
    assert_scan_read(extractor.extract(path))


# -- classification of the child's OCR report (pure) ----------------------------------


def ocr_report(content_type: str, **fields: object) -> ParserReport:
    parser = "org.apache.tika.parser.image.ImageParser"
    metadata = {"Content-Type": [content_type], "X-TIKA:Parsed-By": [parser]}
    return dataclasses.replace(ParserReport(size=1000, metadata=metadata), **fields)


def test_ocr_text_is_ok_and_says_ocr_with_its_note() -> None:
    used = ocr_report("image/png", text="출생통보제", ocr_status="ok", ocr_used=True)
    assert classify(used, max_text_chars=100).status_detail == "ocr"
    capped = dataclasses.replace(used, ocr_detail="20 of 57 pages", source_truncated=True)
    result = classify(capped, max_text_chars=100)
    assert result.status_detail == "ocr (20 of 57 pages)" and result.truncated
    # OCR ran, but the text layer was longer and was kept: not OCR's text.
    kept = dataclasses.replace(used, ocr_used=False)
    assert classify(kept, max_text_chars=100).status_detail == ""


def test_ocr_failures_become_statuses_unless_something_more_telling_was_found() -> None:
    bomb = ocr_report("image/png", ocr_status="limit_exceeded", ocr_detail="image too large")
    assert classify(bomb, max_text_chars=100).status_detail == "limit_exceeded: image too large"
    broken = ocr_report("image/png", ocr_status="parse_error", ocr_detail="unreadable image")
    assert classify(broken, max_text_chars=100).status is ExtractionStatus.PARSE_ERROR
    nothing = ocr_report("image/png", ocr_status="empty")
    assert classify(nothing, max_text_chars=100).status_detail == "empty"
    # A password-protected PDF that poppler cannot open either stays "encrypted".
    locked = dataclasses.replace(
        ocr_report("application/pdf", ocr_status="parse_error", ocr_detail="Incorrect password"),
        metadata={
            "Content-Type": ["application/pdf"],
            "X-TIKA:Parsed-By": ["org.apache.tika.parser.pdf.PDFParser"],
            "X-TIKA:warning": ["EncryptedDocumentException: document is encrypted"],
        },
    )
    assert classify(locked, max_text_chars=100).status is ExtractionStatus.ENCRYPTED


@needs_tesseract
def test_ocr_has_its_own_time_budget_beyond_the_extraction_timeout(tmp_path: Path) -> None:
    # 40 lines take tesseract several seconds; the parser's 2 s do not cover them,
    # the child asks its parent for OCR's budget and gets it.
    long_page = scans.render_page(tuple(scans.BODY for _ in range(40)), size=40)
    with NativeTikaExtractor(timeout_seconds=2.0, ocr=OcrConfig(timeout_seconds=120)) as ex:
        ex.ping()
        started = time.monotonic()
        result = extract(ex, tmp_path / "long.png", scans.image_bytes(long_page, "PNG"))
        elapsed = time.monotonic() - started
    assert result.status_detail == "ocr", result
    assert result.text.count("의료기관은") >= 30
    if elapsed <= 2.0:
        pytest.skip(f"OCR took only {elapsed:.1f} s here: the deadline extension was not needed")
