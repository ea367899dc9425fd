"""Hangul documents written by the tests themselves: HWPX packages and HWP 5 compound files.

`ole_file` is a minimal OLE2 (compound file binary, version 3) writer: 512-byte
sectors, every stream padded to the 4096-byte mini-stream cutoff so that no
mini stream is needed. Readers such as olefile (and Hangul's own format) only
look at the bytes a stream declares; the padding is zeros.

`hwp5_file` builds an HWP 5 document from paragraph texts with that writer:
`FileHeader`, `BodyText/Section0` (or `ViewText/Section0`, AES-encrypted as a
distribution document) and `\\x05HwpSummaryInformation`.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SECTOR = 512
MIN_STREAM = 4096
ENDOFCHAIN = 0xFFFFFFFE
FREESECT = 0xFFFFFFFF
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF


def _pad(data: bytes, size: int) -> bytes:
    return data + b"\x00" * (-len(data) % size)


def _dir_entry(name: str, kind: int, *, child: int, right: int, start: int, size: int) -> bytes:
    encoded = name.encode("utf-16-le") + b"\x00\x00"
    entry = encoded.ljust(64, b"\x00")
    entry += struct.pack("<HBB", len(encoded), kind, 1)  # name length, type, black
    entry += struct.pack("<III", NOSTREAM, right, child)  # left, right, child
    entry += b"\x00" * 16 + b"\x00" * 4 + b"\x00" * 16  # clsid, state bits, times
    entry += struct.pack("<IQ", start, size)
    return entry


def ole_file(streams: dict[str, bytes]) -> bytes:
    """An OLE2 compound file holding `streams` ("Storage/Stream" paths, one level deep)."""
    # Directory: root, then each storage and each stream; siblings chained rightwards.
    storages: dict[str, list[str]] = {}
    top: list[str] = []
    for path in streams:
        if "/" in path:
            storage, _ = path.split("/", 1)
            if storage not in storages:
                storages[storage] = []
                top.append(storage)
            storages[storage].append(path)
        else:
            top.append(path)
    order = ["<root>"]
    for name in top:
        order.append(name)
        order.extend(storages.get(name, []))
    index = {name: number for number, name in enumerate(order)}

    data = b""
    starts: dict[str, tuple[int, int]] = {}
    for path, content in streams.items():
        padded = _pad(content.ljust(MIN_STREAM, b"\x00"), SECTOR)
        starts[path] = (len(data) // SECTOR, len(padded))
        data += padded
    data_sectors = len(data) // SECTOR

    def siblings(names: list[str]) -> dict[str, int]:
        return {
            name: (index[names[i + 1]] if i + 1 < len(names) else NOSTREAM)
            for i, name in enumerate(names)
        }

    right = siblings(top)
    for children in storages.values():
        right.update(siblings(children))
    entries = []
    for name in order:
        if name == "<root>":
            entries.append(
                _dir_entry(
                    "Root Entry", 5, child=index[top[0]], right=NOSTREAM, start=ENDOFCHAIN, size=0
                )
            )
        elif name in storages:
            entries.append(
                _dir_entry(
                    name, 1, child=index[storages[name][0]], right=right[name], start=0, size=0
                )
            )
        else:
            start, size = starts[name]
            entries.append(
                _dir_entry(
                    name.rsplit("/", 1)[-1],
                    2,
                    child=NOSTREAM,
                    right=right[name],
                    start=start,
                    size=size,
                )
            )
    directory = _pad(b"".join(entries), SECTOR)
    dir_sectors = len(directory) // SECTOR

    fat_sectors = 1
    while (data_sectors + dir_sectors + fat_sectors) > fat_sectors * (SECTOR // 4):
        fat_sectors += 1
    fat: list[int] = []
    for _path, (start, size) in starts.items():
        count = size // SECTOR
        fat.extend(start + i + 1 for i in range(count - 1))
        fat.append(ENDOFCHAIN)
    dir_start = data_sectors
    fat.extend(dir_start + i + 1 for i in range(dir_sectors - 1))
    fat.append(ENDOFCHAIN)
    fat_start = dir_start + dir_sectors
    fat.extend([FATSECT] * fat_sectors)
    fat.extend([FREESECT] * (fat_sectors * (SECTOR // 4) - len(fat)))

    difat = [fat_start + i for i in range(fat_sectors)] + [FREESECT] * (109 - fat_sectors)
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16
    header += struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\x00" * 6
    header += struct.pack(
        "<IIIIIIIII", 0, fat_sectors, dir_start, 0, 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0
    )
    header += struct.pack("<109I", *difat)
    return header + data + directory + struct.pack(f"<{len(fat)}I", *fat)


# -- HWP 5 --------------------------------------------------------------------------------

PARA_TEXT = 0x43
DISTRIBUTE_DOC_DATA = 0x1C


def record(tag: int, payload: bytes, level: int = 0) -> bytes:
    if len(payload) >= 0xFFF:
        return struct.pack("<II", tag | (level << 10) | (0xFFF << 20), len(payload)) + payload
    return struct.pack("<I", tag | (level << 10) | (len(payload) << 20)) + payload


def para_text(text: str) -> bytes:
    """A PARA_TEXT record: the text (\\t becomes an inline tab control) and a paragraph end."""
    units = b""
    for char in text:
        if char == "\t":
            units += struct.pack("<8H", 9, 0, 0, 0, 0, 0, 0, 9)
        else:
            units += char.encode("utf-16-le")
    return record(PARA_TEXT, units + b"\x0d\x00")


def field_begin_control() -> bytes:
    """An extended control (field begin, 8 code units) as it sits inside PARA_TEXT."""
    return struct.pack("<H", 3) + b"%clk" + b"\x00" * 8 + struct.pack("<H", 3)


def summary_information(title: str, author: str, created: datetime) -> bytes:
    """An OLE property set with title (2), author (4) and creation time (12)."""

    def lpwstr(value: str) -> bytes:
        encoded = (value + "\x00").encode("utf-16-le")
        return _pad(struct.pack("<II", 0x1F, len(value) + 1) + encoded, 4)

    ticks = int((created - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)
    values = [(2, lpwstr(title)), (4, lpwstr(author)), (12, struct.pack("<IQ", 0x40, ticks))]
    offset = 8 + 8 * len(values)
    table = b""
    body = b""
    for pid, value in values:
        table += struct.pack("<II", pid, offset + len(body))
        body += value
    section = struct.pack("<II", 8 + len(table) + len(body), len(values)) + table + body
    fmtid = bytes.fromhex("e0859ff2f94f6810ab9108002b27b3d9")
    header = struct.pack("<HHI16sI", 0xFFFE, 0, 0x00020005, b"\x00" * 16, 1)
    return header + fmtid + struct.pack("<I", 28 + 20) + section


def _msvc_rand(seed: int) -> list[int]:
    values: list[int] = []
    state = seed
    for _ in range(600):
        state = (state * 214013 + 2531011) & 0xFFFFFFFF
        values.append((state >> 16) & 0x7FFF)
    return values


def _distribution_record(key: bytes, seed: int) -> bytes:
    """The 256-byte record hiding `key`, scrambled as Hangul does (XOR is its own inverse)."""
    plain = bytearray(256)
    plain[:4] = seed.to_bytes(4, "little")
    offset = 4 + (plain[0] & 0x0F)
    plain[offset : offset + 16] = key
    rand = iter(_msvc_rand(seed))
    xor, run = 0, 0
    for position in range(256):
        if run == 0:
            xor = next(rand) & 0xFF
            run = (next(rand) & 0x0F) + 1
        if position >= 4:
            plain[position] ^= xor
        run -= 1
    return bytes(plain)


def hwp5_file(
    paragraphs: list[bytes],
    *,
    compressed: bool = True,
    password: bool = False,
    distribution: bool = False,
    title: str = "",
    author: str = "",
    version: int = 0x05000300,
) -> bytes:
    """An HWP 5 file whose section holds `paragraphs` (records, e.g. from `para_text`)."""
    flags = (1 if compressed else 0) | (2 if password else 0) | (4 if distribution else 0)
    header = b"HWP Document File".ljust(32, b"\x00") + struct.pack("<II", version, flags)
    section = b"".join(paragraphs)
    if compressed:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        section = packer.compress(section) + packer.flush()
    streams = {"FileHeader": header.ljust(256, b"\x00")}
    if distribution:
        key = bytes(range(0x30, 0x40))
        body = _pad(section, 16)
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        encrypted = encryptor.update(body) + encryptor.finalize()
        streams["ViewText/Section0"] = (
            record(DISTRIBUTE_DOC_DATA, _distribution_record(key, 0x1234ABCD)) + encrypted
        )
        # What Hangul leaves in BodyText of a distribution document: a notice only.
        notice = para_text("이 문서는 배포용 문서입니다.")
        if compressed:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            notice = packer.compress(notice) + packer.flush()
        streams["BodyText/Section0"] = notice
    else:
        streams["BodyText/Section0"] = section
    if title or author:
        streams["\x05HwpSummaryInformation"] = summary_information(
            title, author, datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
        )
    return ole_file(streams)


# -- HWPX ---------------------------------------------------------------------------------

HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"
HS = "http://www.hancom.co.kr/hwpml/2011/section"


def hwpx_section(body: str) -> bytes:
    """An OWPML section part whose root holds `body` (paragraph XML using the `hp:` prefix)."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>'
        f'<hs:sec xmlns:hs="{HS}" xmlns:hp="{HP}">{body}</hs:sec>'
    ).encode()


def hwpx_paragraph(*runs: str) -> str:
    return "<hp:p>" + "".join(f"<hp:run>{run}</hp:run>" for run in runs) + "</hp:p>"


def hwpx_file(
    sections: list[bytes],
    *,
    title: str = "",
    creator: str = "",
    mimetype: bool = True,
    encrypted: bool = False,
) -> bytes:
    """An HWPX package with `sections` as Contents/section<n>.xml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        if mimetype:
            package.writestr("mimetype", "application/hwp+zip", compress_type=zipfile.ZIP_STORED)
        package.writestr("version.xml", '<?xml version="1.0"?><hv:HCFVersion xmlns:hv="x"/>')
        package.writestr(
            "Contents/content.hpf",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<opf:package xmlns:opf="http://www.idpf.org/2007/opf/"><opf:metadata>'
            f"<opf:title>{title}</opf:title><opf:language>ko</opf:language>"
            f'<opf:meta name="creator" content="text">{creator}</opf:meta>'
            '<opf:meta name="CreatedDate" content="text">2024-03-01T09:30:00Z</opf:meta>'
            "</opf:metadata></opf:package>",
        )
        manifest = "<odf:file-entry><odf:encryption-data/></odf:file-entry>" if encrypted else ""
        package.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0"?><odf:manifest xmlns:odf="urn:oasis:names:tc:opendocument:'
            f'xmlns:manifest:1.0">{manifest}</odf:manifest>',
        )
        for number, section in enumerate(sections):
            package.writestr(f"Contents/section{number}.xml", section, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
