"""Downloads name the file as RFC 6266 / 5987 say: a readable ASCII `filename` for
clients that ignore `filename*` (curl -OJ), and the exact UTF-8 name in `filename*`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def owner(server: Server) -> str:
    return server.user("naming", "NAME-A", ministry="NAME")


def _utf8_name(header: str) -> str:
    """The name a client honouring RFC 6266 saves: `filename*`, decoded (RFC 5987)."""
    charset, _, encoded = header.split("filename*=", 1)[1].partition("''")
    assert charset == "UTF-8" and ";" not in encoded and '"' not in encoded
    return unquote(encoded, encoding="utf-8", errors="strict")


def _disposition(server: Server, owner: str, filename: str) -> tuple[str, str]:
    doc = server.upload(owner, b"some bytes", filename, wait=False)
    with server.client(owner) as c:
        r = c.get(f"/documents/{doc['id']}/content")
    assert r.status_code == 200, r.text
    return doc["id"], r.headers["content-disposition"]


@pytest.mark.parametrize(
    ("filename", "fallback"),
    [
        ("보고서.docx", "document.docx"),
        ("2026년 예산안 v2.xlsx", "2026 v2.xlsx"),
        ("회의록 (1).hwp", "document (1).hwp"),
        ("annual report.pdf", "annual report.pdf"),
        ("한글이름", "document"),
    ],
)
def test_korean_names_get_a_readable_ascii_fallback_and_the_utf8_name(
    server: Server, owner: str, filename: str, fallback: str
) -> None:
    _, header = _disposition(server, owner, filename)
    assert header == (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    )
    assert _utf8_name(header) == filename


@pytest.mark.parametrize(
    "filename",
    [
        'quote"semi;colon%25back\\slash.pdf',
        "line\r\nSet-Cookie: stolen=1.txt",
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
    ],
)
def test_hostile_names_cannot_inject_or_escape(server: Server, owner: str, filename: str) -> None:
    _, header = _disposition(server, owner, filename)
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert not set(fallback) & set('"\\;%/\r\n:'), header
    assert "\r" not in header and "\n" not in header
    assert header.count('"') == 2  # the fallback's two quotes, nothing else
    saved = _utf8_name(header)
    assert saved and "/" not in saved and "\\" not in saved and saved not in (".", "..")


def test_curl_saves_a_korean_named_download_under_a_readable_name(
    server: Server, owner: str, tmp_path: Path
) -> None:
    doc_id, _ = _disposition(server, owner, "보고서.docx")
    subprocess.run(
        [
            "curl", "-sSfOJ",
            "-H", f"Authorization: Bearer {server.token(owner)}",
            f"{server.base_url}/api/v1/documents/{doc_id}/content",
        ],
        cwd=tmp_path, check=True, timeout=60,
    )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["document.docx"]
    assert (tmp_path / "document.docx").read_bytes() == b"some bytes"
