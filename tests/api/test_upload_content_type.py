"""The 202 of an upload already says what the file is: DOCX, XLSX, PPTX and HWPX are not zip.

The upload path reads the leading bytes and, for a zip whose first entries do
not tell, the entry names of its central directory (nothing is decompressed).
"""

from __future__ import annotations

import io
import zipfile

import pytest

from storage.content_guess import DOCX, HWPX, PPTX, XLSX, ZIP
from tests.conftest import Server
from tests.hangul_fixtures import hwpx_file, hwpx_paragraph, hwpx_section


def package(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buffer.getvalue()


def office(kind: str, *, padding: int = 0) -> bytes:
    """An OOXML package; `padding` bytes of incompressible media before the main part,
    so that the part names are beyond the leading bytes the upload path reads."""
    import os

    main = {"word": "word/document.xml", "xl": "xl/workbook.xml", "ppt": "ppt/presentation.xml"}
    entries = [("[Content_Types].xml", b"<Types/>"), ("_rels/.rels", b"<Relationships/>")]
    if padding:
        entries.append(("docProps/thumbnail.jpeg", os.urandom(padding)))
    entries.append((main[kind], b"<x/>"))
    return package(entries)


HWPX_NOTICE = hwpx_file([hwpx_section(hwpx_paragraph("<hp:t>공고</hp:t>"))], title="공고")
HWPX_WITHOUT_MIMETYPE = hwpx_file(
    [hwpx_section(hwpx_paragraph("<hp:t>공고</hp:t>"))], title="공고", mimetype=False
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (office("word"), DOCX),
        (office("xl"), XLSX),
        (office("ppt"), PPTX),
        (office("word", padding=64 * 1024), DOCX),
        (office("xl", padding=64 * 1024), XLSX),
        (HWPX_NOTICE, HWPX),
        (HWPX_WITHOUT_MIMETYPE, HWPX),
        (package([("a.txt", b"hello"), ("b/c.txt", b"world")]), ZIP),
    ],
    ids=["docx", "xlsx", "pptx", "docx-late-part", "xlsx-late-part", "hwpx", "hwpx-no-mime", "zip"],
)
def test_the_202_carries_the_sniffed_content_type(
    server: Server, content: bytes, expected: str
) -> None:
    user = server.user("sniffer", "MOIS-SNF", ministry="MOIS")
    with server.client(user) as c:
        r = c.post(
            "/documents?allow_duplicate=true",
            files={"file": ("file.bin", content, "application/zip")},
        )
    assert r.status_code == 202, r.text
    assert r.json()["content_type"] == expected
