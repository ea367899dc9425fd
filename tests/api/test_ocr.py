"""OCR over HTTP: an uploaded rendered scan is found by a Korean word drawn in it.

Through the whole system (upload, worker, extraction child with tesseract,
Korean analysis, index, permission-aware search). A server with
`CROSSDOC_OCR=false` indexes the same scan without its text.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from indexer.extraction.ocr import OcrConfig, probe_engine
from tests import scans
from tests.conftest import Server, start_server

pytest.importorskip("PIL", reason="the tests draw their scans with Pillow")
_PROBE = probe_engine(OcrConfig())
pytestmark = pytest.mark.skipif(
    not _PROBE.available,
    reason=f"OCR unavailable ({_PROBE.reason}): apt-get install tesseract-ocr tesseract-ocr-kor",
)


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    del stack  # a dependency only: started again for each stack (tests/api/conftest.py)
    yield from start_server(tmp_path_factory.mktemp("ocr"))


@pytest.fixture(scope="module")
def clerk(server: Server) -> str:
    return server.user("clerk", "MOHW-OCR", ministry="MOHW")


def hit_ids(server: Server, user: str, q: str) -> set[str]:
    return {hit["id"] for hit in server.search(user, q=q)["hits"]}


def test_uploaded_png_scan_is_found_by_a_korean_word(server: Server, clerk: str) -> None:
    doc = server.upload(clerk, scans.scan_png(), "스캔본.png", title="스캔 1")
    assert doc["status"] == "indexed", doc
    assert doc["status_detail"] == "ocr"
    assert doc["content_type"] == "image/png"
    assert doc["id"] in hit_ids(server, clerk, "출생통보제")
    assert doc["id"] in hit_ids(server, clerk, "의료기관")  # analysed: 의료기관은 → 의료기관
    assert doc["id"] in hit_ids(server, clerk, "notification")


def test_uploaded_image_only_pdf_is_found(server: Server, clerk: str) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm missing: apt-get install poppler-utils")
    lines = ("보호출산제 상담 절차", "Protected birth counselling")
    doc = server.upload(clerk, scans.scan_pdf(lines), "scan.pdf", title="스캔 2")
    assert doc["status"] == "indexed" and doc["status_detail"] == "ocr", doc
    assert doc["id"] in hit_ids(server, clerk, "보호출산제")
    assert doc["id"] in hit_ids(server, clerk, "counselling")


def test_bomb_image_fails_with_a_reason_and_the_worker_lives_on(server: Server, clerk: str) -> None:
    bomb = server.upload(clerk, scans.bomb_png(), "bomb.png", title="폭탄 이미지")
    assert bomb["status"] == "failed", bomb
    assert bomb["status_detail"].startswith(
        "limit_exceeded: image too large for OCR: 100000×100000"
    )
    # Stored and findable by its title even without text.
    assert bomb["id"] in hit_ids(server, clerk, "폭탄")
    after = server.upload(clerk, scans.scan_png(("행정안전부 공문 스캔",)), "after.png")
    assert after["status"] == "indexed" and after["status_detail"] == "ocr", after
    assert after["id"] in hit_ids(server, clerk, "공문")
    with server.client(clerk) as c:
        assert c.get("/readyz").status_code == 200


def test_ocr_off_by_setting_indexes_the_scan_without_its_text(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for off in start_server(tmp_path_factory.mktemp("ocr-off"), ocr=False):
        user = off.user("clerk", "MOHW-OCR", ministry="MOHW")
        doc = off.upload(user, scans.scan_png(), "스캔본.png", title="꺼진 스캔")
        assert doc["status"] == "indexed" and doc["status_detail"] == "empty", doc
        assert doc["has_text"] is False
        assert doc["id"] not in hit_ids(off, user, "출생통보제")
        assert doc["id"] in hit_ids(off, user, "꺼진 스캔")
