"""Rendered scans for the OCR tests: Korean and English text drawn with Pillow.

The tests draw their own "scans" (no image files in the repository) with a
Korean font from Debian's `fonts-nanum`; `korean_font()` says where it is, or
why the tests that need it must skip.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

#: Where Debian's fonts-nanum puts its fonts (first found wins).
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    Path("/usr/share/fonts/truetype/nanum/NanumMyeongjo.ttf"),
    Path("/usr/share/fonts/opentype/nanum/NanumGothic.otf"),
)
TITLE = "출생통보제 시행 안내"
ENGLISH = "Birth notification starts in July"
BODY = "의료기관은 아동의 출생 사실을 통보합니다"
#: Words a scan of these lines must give back (each from a different line).
WORDS = ("출생통보제", "시행", "안내", "notification", "의료기관은")


def korean_font() -> Path:
    """The Korean font file, or skip the test with the reason."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    pytest.skip("no Korean font: apt-get install fonts-nanum (looked in /usr/share/fonts)")


def render_page(lines: tuple[str, ...] = (TITLE, ENGLISH, BODY), *, size: int = 56) -> Any:
    """A white 300-dpi "page" (grey scale) with `lines` in black, like a clean scan."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(korean_font()), size)
    width, line_height = 1800, int(size * 1.8)
    page = Image.new("L", (width, 200 + line_height * len(lines)), 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((120, 100 + number * line_height), line, font=font, fill=0)
    return page


def image_bytes(page: Any, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    page.save(buffer, format=image_format, dpi=(300, 300), **options)
    return buffer.getvalue()


def scan_png(lines: tuple[str, ...] = (TITLE, ENGLISH, BODY)) -> bytes:
    return image_bytes(render_page(lines), "PNG")


def scan_pdf(lines: tuple[str, ...] = (TITLE, ENGLISH, BODY)) -> bytes:
    """An image-only PDF (no text layer): the page is one picture, as a scanner makes."""
    buffer = io.BytesIO()
    render_page(lines).save(buffer, format="PDF", resolution=300.0)
    return buffer.getvalue()


def scan_tiff(pages: list[tuple[str, ...]]) -> bytes:
    """A multi-page TIFF, one rendered page per frame."""
    frames = [render_page(lines) for lines in pages]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:], dpi=(300, 300))
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 100-byte PNG declaring 10 billion pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    first_row = zlib.compress(b"\x00" * (width // 8 + 2), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", first_row)
        + _png_chunk(b"IEND", b"")
    )


def text_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer (Helvetica, ASCII `text`)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
