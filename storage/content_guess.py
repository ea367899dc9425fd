"""A first guess at a file's type from its leading bytes (the extractor refines it later).

Cheap enough for the upload path: the leading bytes, and for a zip whose first
entries do not say what it is, the names in its central directory (a bounded
read at the end of the file; nothing is decompressed).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

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


ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
HWPX = "application/hwp+zip"

#: Entry names that say which application wrote a zip package.
_PACKAGE_PARTS: tuple[tuple[bytes, str], ...] = (
    (b"word/", DOCX),
    (b"xl/", XLSX),
    (b"ppt/", PPTX),
)
#: How much of a zip's end the central directory is read from, at most.
_CENTRAL_DIRECTORY_BYTES = 1 << 20
_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the end record, after a comment of at most 64 KiB
_CENTRAL_ENTRY = b"PK\x01\x02"


def _package_type(names: list[bytes]) -> str | None:
    """The type of a zip package from its entry names, None when they do not tell."""
    if any(name.startswith(b"Contents/section") for name in names) or (
        b"Contents/content.hpf" in names
    ):
        return HWPX
    if b"[Content_Types].xml" in names:
        for part, media_type in _PACKAGE_PARTS:
            if any(name.startswith(part) for name in names):
                return media_type
    return None


def _declared_mimetype(head: bytes) -> str | None:
    # ODF, EPUB and HWPX store their media type first, uncompressed, in an entry
    # named "mimetype": the local header is 30 bytes, then the name.
    if head[30:38] != b"mimetype" or int.from_bytes(head[26:28], "little") != 8:
        return None
    extra_length = int.from_bytes(head[28:30], "little")
    size = int.from_bytes(head[18:22], "little")
    start = 38 + extra_length
    declared = head[start : start + size] if 0 < size <= 100 else b""
    if re.fullmatch(rb"[a-z]+/[\w.+-]+", declared):
        return declared.decode("ascii")
    return None


def _local_names(head: bytes) -> list[bytes]:
    """The names of the entries whose local headers lie within `head`."""
    names = []
    at = 0
    while head.startswith(b"PK\x03\x04", at) and at + 30 <= len(head):
        flags, _, _, _, _, compressed = struct.unpack_from("<HHHHIII", head, at + 6)[:6]
        name_length, extra_length = struct.unpack_from("<HH", head, at + 26)
        names.append(head[at + 30 : at + 30 + name_length])
        if flags & 0x08:
            break  # sizes follow the data: the next header cannot be found cheaply
        at += 30 + name_length + extra_length + compressed
    return names


def central_directory_names(path: Path, limit: int = _CENTRAL_DIRECTORY_BYTES) -> list[bytes]:
    """Entry names from a zip file's central directory (at most `limit` bytes of it).

    [] when the file has no readable end record (not a zip, cut short, zip64).
    """
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            tail_start = max(0, size - _EOCD_SEARCH)
            f.seek(tail_start)
            tail = f.read()
            at = tail.rfind(_EOCD)
            if at < 0 or at + 22 > len(tail):
                return []
            cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
            if cd_offset + cd_size > size:
                return []
            f.seek(cd_offset)
            directory = f.read(min(cd_size, limit))
    except OSError:
        return []
    names = []
    pos = 0
    while directory.startswith(_CENTRAL_ENTRY, pos) and pos + 46 <= len(directory):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", directory, pos + 28)
        names.append(directory[pos + 46 : pos + 46 + name_length])
        pos += 46 + name_length + extra_length + comment_length
    return names


def _zip_type(head: bytes, path: Path | None) -> str:
    declared = _declared_mimetype(head)
    if declared:
        return declared
    found = _package_type(_local_names(head))
    if found is None and path is not None:
        found = _package_type(central_directory_names(path))
    return found or ZIP


def guess_content_type(head: bytes, path: Path | None = None) -> str:
    """Guess a MIME type from the first bytes; never from the name or the uploader's claim.

    With `path` (the whole file), a zip whose first entries do not tell is
    named from its central directory: DOCX, XLSX, PPTX and HWPX are not
    "application/zip".
    """
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(head, path)
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
