"""Magic-byte sniffing, used when Tika gives no type (pure)."""

from __future__ import annotations

import io
import zipfile

import pytest

from indexer.extraction.sniff import (
    HWP3_MAGIC,
    OLE2_MAGIC,
    is_hwp3,
    ole2_is_hwp5,
    sniff_content_type,
)


def zip_bytes(entries: list[tuple[str, bytes]], *, stored_first: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (name, data) in enumerate(entries):
            method = zipfile.ZIP_STORED if stored_first and index == 0 else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=method)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 20, "application/x-executable"),
        (b"MZ\x90\x00\x03" + b"\x00" * 20, "application/x-msdownload"),
        (HWP3_MAGIC + b"\x1a\x01\x02", "application/x-hwp"),
        (OLE2_MAGIC + b"\x00" * 100, "application/x-tika-msoffice"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "application/x-7z-compressed"),
        (b"{\\rtf1\\ansi", "application/rtf"),
        (b"  <!DOCTYPE html><html>", "text/html"),
        (b"\xef\xbb\xbf<?xml version='1.0'?>", "application/xml"),
        ("출생신고 안내문".encode("cp949"), "text/plain"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
        (b"", "application/octet-stream"),
        (b"PK\x07\x08spanned", "application/zip"),
    ],
)
def test_magic(head: bytes, media_type: str) -> None:
    assert sniff_content_type(head) == media_type


def test_zip_subtypes() -> None:
    docx = zip_bytes([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])
    assert sniff_content_type(docx[:4096]).endswith("wordprocessingml.document")
    odt = zip_bytes(
        [("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")],
        stored_first=True,
    )
    assert sniff_content_type(odt[:4096]) == "application/vnd.oasis.opendocument.text"
    hwpx = zip_bytes([("mimetype", b"application/hwp+zip")], stored_first=True)
    assert sniff_content_type(hwpx) == "application/hwp+zip"
    plain = zip_bytes([("a.txt", b"hello")])
    assert sniff_content_type(plain) == "application/zip"


def test_hwp_signatures() -> None:
    assert is_hwp3(HWP3_MAGIC + b"\x00")
    assert not is_hwp3(b"HWP Document File")
    assert ole2_is_hwp5(OLE2_MAGIC + b"\x00" * 2040 + b"HWP Document File\x00")
    assert not ole2_is_hwp5(b"HWP Document File")
    assert not ole2_is_hwp5(OLE2_MAGIC + b"\x00" * 100)
