"""HWP 5 documents: an OLE2 compound file of binary record streams.

Layout (Hancom's published HWP 5.0 format description):

- `FileHeader`: the signature "HWP Document File", the version, and property
  flags (bit 0 compressed, bit 1 password, bit 2 distribution, bit 4 DRM);
- `BodyText/Section<n>`: the document's records, raw-deflate compressed when
  bit 0 is set. Every paragraph, wherever it sits (body, table cells,
  headers and footers, foot- and endnotes, text boxes, hidden comments,
  master pages), is a `PARA_TEXT` record in its section's stream, in
  document order; so reading every `PARA_TEXT` reads all of the text;
- `ViewText/Section<n>`: the same records in a distribution-protected (배포용)
  document, AES-128-ECB encrypted; the first record holds the key, scrambled
  with the C runtime's `rand()` seeded from its first four bytes (as in
  Apache Tika's `HwpTextExtractorV5` and pyhwp);
- `\\x05HwpSummaryInformation`: an OLE property set (title, author, dates).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import olefile
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from indexer.extraction.hangul.result import (
    HangulEncryptedError,
    HangulError,
    HangulKind,
    HangulLimitError,
    HangulText,
    join_bounded,
)
from indexer.extraction.sniff import HWP5_SIGNATURE

FILE_HEADER = "FileHeader"
SUMMARY_STREAM = "\x05HwpSummaryInformation"

FLAG_COMPRESSED = 0x01
FLAG_PASSWORD = 0x02
FLAG_DISTRIBUTION = 0x04
FLAG_DRM = 0x10

TAG_PARA_TEXT = 0x43  # HWPTAG_BEGIN (0x10) + 51
TAG_DISTRIBUTE_DOC_DATA = 0x1C  # HWPTAG_BEGIN + 12
DISTRIBUTE_DATA_BYTES = 256

#: Most bytes one section may inflate to: beyond this it is a bomb, not a document.
MAX_SECTION_BYTES = 256 * 1024 * 1024
#: Most sections we read (real documents have a handful; the number is only a guard).
MAX_SECTIONS = 10_000
_INFLATE_CHUNK = 1024 * 1024

# In PARA_TEXT, code units 1-9, 11-12 and 14-23 start an 8-unit control (the
# code, six units of data, the code again); 9 is a tab. The rest of 0-31 are
# one-unit controls.
_EIGHT_UNIT_CONTROL = re.compile("[\x01-\x09\x0b\x0c\x0e-\x17][\\s\\S]{0,7}")
_ONE_UNIT_CONTROLS = {
    0x00: None,
    0x0A: "\n",  # line break
    0x0D: "\n",  # paragraph end
    0x18: "-",  # hyphen
    0x1E: " ",  # non-breaking space
    0x1F: " ",  # fixed-width space
    **dict.fromkeys(range(0x19, 0x1E)),  # reserved
}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SECTION_NAME = re.compile(r"^Section(\d{1,6})$")


def is_hwp5(path: Path) -> bool:
    """True when `path` is an OLE2 compound file whose `FileHeader` carries the HWP signature."""
    try:
        with olefile.OleFileIO(str(path)) as ole:
            return _file_header(ole).startswith(HWP5_SIGNATURE)
    except Exception:  # noqa: BLE001 - any failure to open means "not an HWP 5 file we read"
        return False


def read_hwp5(path: Path, *, max_chars: int) -> HangulText:
    """Text and metadata of the HWP 5 file `path`, at most `max_chars` (+1) characters.

    Raises `HangulEncryptedError` for password- or DRM-protected documents,
    `HangulLimitError` for sections inflating past MAX_SECTION_BYTES, and
    `HangulError` for anything malformed.
    """
    try:
        with olefile.OleFileIO(str(path)) as ole:
            return _read(ole, max_chars)
    except (HangulError, MemoryError):
        raise
    except Exception as err:
        raise HangulError(f"malformed HWP 5 file: {type(err).__name__}: {err}") from err


def _read(ole: olefile.OleFileIO, max_chars: int) -> HangulText:
    header = _file_header(ole)
    if not header.startswith(HWP5_SIGNATURE) or len(header) < 40:
        raise HangulError("no HWP 5 file header")
    (flags,) = struct.unpack_from("<I", header, 36)
    result = HangulText(kind=HangulKind.HWP5, metadata=_summary(ole))
    if flags & (FLAG_PASSWORD | FLAG_DRM):
        protection = "password" if flags & FLAG_PASSWORD else "DRM"
        raise HangulEncryptedError(
            f"encrypted HWP document ({protection}-protected)", metadata=result.metadata
        )
    compressed = bool(flags & FLAG_COMPRESSED)
    distribution = bool(flags & FLAG_DISTRIBUTION)
    storage = "ViewText" if distribution else "BodyText"
    sections = _section_streams(ole, storage)
    if not sections and distribution:
        storage, distribution = "BodyText", False
        sections = _section_streams(ole, storage)
    if not sections:
        raise HangulError(f"no {storage} sections")

    def section_data(name: str) -> bytes:
        data = ole.openstream(name).read()
        if distribution:
            data = _decrypt_distribution(data)
        return _inflate(data) if compressed else data

    result.text, result.truncated = join_bounded(
        (paragraph_texts(section_data(name)) for name in sections), max_chars
    )
    return result


def _file_header(ole: olefile.OleFileIO) -> bytes:
    if not ole.exists(FILE_HEADER):
        return b""
    data: bytes = ole.openstream(FILE_HEADER).read(256)
    return data


def _section_streams(ole: olefile.OleFileIO, storage: str) -> list[str]:
    numbered: list[tuple[int, str]] = []
    for entry in ole.listdir(streams=True, storages=False):
        if len(entry) == 2 and entry[0] == storage:
            match = _SECTION_NAME.match(entry[1])
            if match:
                numbered.append((int(match.group(1)), f"{storage}/{entry[1]}"))
    numbered.sort()
    return [name for _, name in numbered[:MAX_SECTIONS]]


def _inflate(data: bytes) -> bytes:
    """Raw-deflate decompress, refusing to grow past MAX_SECTION_BYTES."""
    inflater = zlib.decompressobj(-15)
    out = bytearray()
    pending = data
    try:
        while pending and not inflater.eof:
            out += inflater.decompress(pending, _INFLATE_CHUNK)
            if len(out) > MAX_SECTION_BYTES:
                raise HangulLimitError(
                    f"suspected zip bomb: a section inflates past {MAX_SECTION_BYTES >> 20} MiB"
                )
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            out += inflater.flush()
    except zlib.error as err:
        if out:
            return bytes(out)  # a truncated stream: keep what was readable
        raise HangulError(f"section does not inflate: {err}") from err
    return bytes(out)


def records(data: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(tag, level, payload) of each record in a decompressed section stream.

    A record header is one little-endian 32-bit word: tag (10 bits), level (10
    bits), size (12 bits; 0xFFF means the size follows as a 32-bit word). A
    record cut short by the end of the stream ends the iteration.
    """
    view = memoryview(data)
    offset, end = 0, len(data)
    while offset + 4 <= end:
        (word,) = struct.unpack_from("<I", data, offset)
        offset += 4
        tag, level, size = word & 0x3FF, (word >> 10) & 0x3FF, word >> 20
        if size == 0xFFF:
            if offset + 4 > end:
                return
            (size,) = struct.unpack_from("<I", data, offset)
            offset += 4
        if offset + size > end:
            return
        yield tag, level, view[offset : offset + size]
        offset += size


def paragraph_texts(data: bytes) -> Iterator[str]:
    """The text of every paragraph in a decompressed section, each ending with a newline."""
    for tag, _level, payload in records(data):
        if tag == TAG_PARA_TEXT:
            text = decode_para_text(bytes(payload))
            if text.strip():
                yield text if text.endswith("\n") else text + "\n"


def _control_replacement(match: re.Match[str]) -> str:
    return "\t" if match.group(0)[0] == "\x09" else ""


def decode_para_text(payload: bytes) -> str:
    """Plain text of one PARA_TEXT record: controls dropped, tabs and breaks kept."""
    raw = payload[: len(payload) & ~1].decode("utf-16-le", "surrogatepass")
    text = _EIGHT_UNIT_CONTROL.sub(_control_replacement, raw)
    return _LONE_SURROGATE.sub("", text.translate(_ONE_UNIT_CONTROLS))


# -- distribution-protected documents ---------------------------------------------


class _MsvcRand:
    """The Microsoft C runtime's `rand()`, which Hangul uses to scramble the key."""

    def __init__(self, seed: int) -> None:
        self._state = seed & 0xFFFFFFFF

    def next(self) -> int:
        self._state = (self._state * 214013 + 2531011) & 0xFFFFFFFF
        return (self._state >> 16) & 0x7FFF


def distribution_key(record: bytes) -> bytes:
    """The AES-128 key hidden in the 256-byte DISTRIBUTE_DOC_DATA record."""
    if len(record) < DISTRIBUTE_DATA_BYTES:
        raise HangulError("distribution record too short")
    data = bytearray(record[:DISTRIBUTE_DATA_BYTES])
    rand = _MsvcRand(int.from_bytes(data[:4], "little"))
    xor, run = 0, 0
    for index in range(DISTRIBUTE_DATA_BYTES):
        if run == 0:
            xor = rand.next() & 0xFF
            run = (rand.next() & 0x0F) + 1
        if index >= 4:
            data[index] ^= xor
        run -= 1
    offset = 4 + (data[0] & 0x0F)
    return bytes(data[offset : offset + 16])


def _decrypt_distribution(stream: bytes) -> bytes:
    """The (still compressed) records of a ViewText section stream."""
    first = next(records(stream), None)
    if first is None or first[0] != TAG_DISTRIBUTE_DOC_DATA:
        raise HangulError("distribution document without its key record")
    key = distribution_key(bytes(first[2]))
    body = stream[4 + DISTRIBUTE_DATA_BYTES :]
    body = body[: len(body) - len(body) % 16]
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305 - the format's choice
    return decryptor.update(body) + decryptor.finalize()


# -- summary information -----------------------------------------------------------

# Property ids of the OLE summary information property set.
_PID_TITLE = 2
_PID_AUTHOR = 4
_PID_CREATED = 12
_PID_MODIFIED = 13


def _summary(ole: olefile.OleFileIO) -> dict[str, str]:
    """Title, author and dates from `\\x05HwpSummaryInformation` ({} when absent or broken)."""
    if not ole.exists(SUMMARY_STREAM):
        return {}
    try:
        properties: dict[int, Any] = ole.getproperties(SUMMARY_STREAM, convert_time=True)
    except Exception:  # noqa: BLE001 - metadata is optional; the text still counts
        return {}
    fields: dict[str, str] = {}
    for name, pid in (("title", _PID_TITLE), ("author", _PID_AUTHOR)):
        value = properties.get(pid)
        if isinstance(value, bytes):
            value = value.decode("utf-16-le", "replace") if b"\x00" in value else ""
        if isinstance(value, str):
            # olefile reads Hangul's VT_LPWSTR values past their end: the value
            # proper stops at the first NUL.
            value = " ".join(value.split("\x00", 1)[0].split())
            if value:
                fields[name] = value
    for name, pid in (("created", _PID_CREATED), ("modified", _PID_MODIFIED)):
        value = properties.get(pid)
        if isinstance(value, datetime) and value.year > 1601:
            fields[name] = (
                value.replace(microsecond=0, tzinfo=UTC).isoformat().replace("+00:00", "Z")
            )
    return fields
