"""A first guess at a file's type from its leading bytes (the extractor refines it later)."""

from __future__ import annotations

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-tika-msoffice"),
    (b"HWP Document File", "application/x-hwp"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1f\x8b", "application/gzip"),
    (b"{\\rtf", "application/rtf"),
)


def guess_content_type(head: bytes) -> str:
    """Guess a MIME type from the first bytes; never from the name or the uploader's claim."""
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if not head:
        return "application/x-empty"
    probe = head[:1024].lstrip().lower()
    if probe.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if probe.startswith(b"<?xml"):
        return "application/xml"
    if b"\x00" in head[:4096] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "application/octet-stream"
    return "text/plain"
