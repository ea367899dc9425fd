"""Honest statuses over HTTP: a stored document without text is `indexed`, not `failed`.

An image-only PDF, an empty file and a binary blob are stored, downloadable and
found by title and file name: their status is `indexed`, `has_text` is false and
`status_detail` says why there is no text (the same words as before). Only a
file that could not be read (corrupt, over a parser limit) is `failed`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server


@pytest.fixture(scope="module")
def plain(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # `stack`: started again for each stack (see tests/api/conftest.py).
    # OCR off: an image-only page then has no text without spending seconds on it.
    yield from start_server(tmp_path_factory.mktemp("honest"), ocr=False)


@pytest.fixture(scope="module")
def clerk(plain: Server) -> str:
    return plain.user("clerk", "MOIS-HON", ministry="MOIS")


def image_only_pdf() -> bytes:
    """A one-page PDF whose page is a picture (no text layer), as a scanner makes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (300, 400), 255).save(buffer, format="PDF", resolution=72.0)
    return buffer.getvalue()


def hit_ids(server: Server, user: str, q: str) -> list[str]:
    return [h["id"] for h in server.search(user, q=q)["hits"]]


@pytest.mark.parametrize(
    ("content", "filename", "title", "detail"),
    [
        (image_only_pdf(), "스캔본.pdf", "스캔한 공문", "empty"),
        (b"", "빈파일.txt", "빈 파일 하나", "empty"),
        (os.urandom(4096), "blob.bin", "알 수 없는 자료", "unsupported_format"),
    ],
    ids=["image-only-pdf", "empty-file", "binary-blob"],
)
def test_a_stored_document_without_text_is_indexed_and_says_why(
    plain: Server, clerk: str, content: bytes, filename: str, title: str, detail: str
) -> None:
    with plain.client(clerk) as c:
        r = c.post("/documents", files={"file": (filename, content)}, data={"title": title})
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["status"] == "pending" and accepted["has_text"] is None
    doc = plain.wait_indexed(clerk, accepted["id"])
    assert doc["status"] == "indexed", doc
    assert doc["has_text"] is False, doc
    assert doc["status_detail"] == detail, doc
    with plain.client(clerk) as c:
        assert c.get(f"/documents/{doc['id']}/content").content == content
    assert doc["id"] in hit_ids(plain, clerk, title)


def test_a_document_with_text_has_text(plain: Server, clerk: str) -> None:
    doc = plain.upload(clerk, "출생통보제 시행 안내".encode(), "안내.txt")
    assert doc["status"] == "indexed" and doc["has_text"] is True, doc
    assert doc["status_detail"] == ""


def test_a_file_that_cannot_be_read_is_still_failed(plain: Server, clerk: str) -> None:
    # A PDF cut after its header: corrupt, not merely without text.
    doc = plain.upload(clerk, b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", "잘린.pdf")
    assert doc["status"] == "failed", doc
    assert doc["has_text"] is False
    assert doc["status_detail"].startswith("parse_error"), doc
    with plain.client(clerk) as c:
        assert c.get(f"/documents/{doc['id']}/content").status_code == 200
