"""Content-type sniffing from a file's first bytes (pure functions, no parsing).

Tika's detection is the one we record. These checks cover the cases where
Tika gives us no type (the parser raised, or the child was killed for its
limits) and the few formats Tika misreads: HWP 3.0 and HWP 5 files that Tika
only sees as a generic OLE2 container.
"""

from __future__ import annotations

import re

HWP3_MAGIC = b"HWP Document File V3.00"
# HWP 5 stores this signature at the start of its `FileHeader` stream, inside an
# OLE2 container, so it appears in the raw bytes at a sector boundary.
HWP5_SIGNATURE = b"HWP Document File"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

#: How many leading bytes `sniff_content_type` looks at.
SNIFF_BYTES = 4096

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (HWP3_MAGIC, "application/x-hwp"),
    (OLE2_MAGIC, "application/x-tika-msoffice"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # empty archive
    (b"PK\x07\x08", "application/zip"),  # spanned archive
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (b"{\\rtf", "application/rtf"),
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-o"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# Control bytes that do not occur in text (tab, newlines, form feed and ESC do).
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def is_hwp3(head: bytes) -> bool:
    """True for a Hangul word-processor 3.0 file (no parser reads it here)."""
    return head.startswith(HWP3_MAGIC)


def is_ole2(head: bytes) -> bool:
    """True for an OLE2 compound file (legacy Office, HWP 5, MSG…)."""
    return head.startswith(OLE2_MAGIC)


def ole2_is_hwp5(data: bytes) -> bool:
    """True when an OLE2 file carries the HWP 5 `FileHeader` signature.

    `data` is a prefix of the file (the first megabyte is plenty: the header
    stream is tiny and written early).
    """
    return is_ole2(data) and HWP5_SIGNATURE in data


_OOXML_PARTS: tuple[tuple[bytes, str], ...] = (
    (b"word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (b"xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)


def _zip_content_type(head: bytes) -> str:
    # ODF, EPUB and HWPX store their media type first, uncompressed, in an
    # entry named "mimetype": the local header is 30 bytes, then the name.
    if head[30:38] == b"mimetype":
        name_length = int.from_bytes(head[26:28], "little")
        extra_length = int.from_bytes(head[28:30], "little")
        size = int.from_bytes(head[18:22], "little")
        start = 30 + name_length + extra_length
        declared = head[start : start + size] if 0 < size <= 100 else b""
        if re.fullmatch(rb"[a-z]+/[\w.+-]+", declared):
            return declared.decode("ascii")
    # HWPX written without its "mimetype" entry: the OWPML section parts say it.
    if b"Contents/section" in head:
        return "application/hwp+zip"
    # OOXML: the part names of the first entries say which application.
    if b"[Content_Types].xml" in head:
        for part, media_type in _OOXML_PARTS:
            if part in head:
                return media_type
    return "application/zip"


def sniff_content_type(head: bytes) -> str:
    """Guess a media type from the first bytes of a file.

    Returns "application/octet-stream" when nothing matches. The guess is coarse
    (an OOXML file is only "application/zip") and is used only when Tika did not
    report a type.
    """
    if head.startswith(b"PK\x03\x04"):
        return _zip_content_type(head)
    if ole2_is_hwp5(head):
        # Found only when the FileHeader sector lies within `head` (it often
        # does); the child detects HWP 5 from the parsed container in any case.
        return "application/x-hwp"
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    text_head = head
    for bom in _BOMS:
        if text_head.startswith(bom):
            text_head = text_head[len(bom) :]
            break
    lowered = text_head.lstrip()[:256].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if lowered.startswith(b"<?xml"):
        return "application/xml"
    if head and not _BINARY_BYTES.search(head[:1024]):
        return "text/plain"
    return "application/octet-stream"
