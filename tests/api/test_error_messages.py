"""Errors a Korean civil servant can read: Korean first, then English, in the one JSON
shape, from the app and from the HTTP layer of a real `crossdoc serve`; invalid
parameters are 422; search filters as people write them (`content_type=pdf`), and a
warning, not a silent 0 hits, for a filter value that names nothing."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from indexer.query import MAX_CLAUSES
from tests.api.serve_process import ServeProcess, prepare_data_dir
from tests.api.test_http_errors import _get, _raw
from tests.conftest import Server
from tests.hangul_fixtures import hwp5_file, hwpx_file, hwpx_paragraph, hwpx_section, para_text
from tests.scans import text_pdf

HANGUL = re.compile("[가-힣]")

_DOCX_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_DOCX_RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx_bytes(text: str) -> bytes:
    """A minimal Word document holding `text`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _DOCX_TYPES)
        archive.writestr("_rels/.rels", _DOCX_RELS)
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


def assert_bilingual(body: dict[str, object], code: str) -> str:
    """The error shape, its message Korean first, then English; the message."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert error["code"] == code, body
    message = str(error["message"])
    korean, sep, english = message.partition(" · ")
    assert sep and HANGUL.search(korean), message
    assert re.search("[A-Za-z]{3}", english), message
    return message


@pytest.fixture(scope="module")
def member(server: Server) -> str:
    return server.user("errs.kim", "ERRS-A", ministry="ERRS")


def test_app_errors_are_korean_then_english(server: Server, member: str) -> None:
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=30) as anonymous:
        assert_bilingual(anonymous.get("/me").json(), "invalid_token")
        r = anonymous.post("/auth/token", data={"username": member, "password": "wrong-one"})
        assert_bilingual(r.json(), "invalid_credentials")
    with server.client(member) as c:
        assert_bilingual(c.get("/documents/0123456789abcdef").json(), "not_found")
        assert_bilingual(c.delete("/search").json(), "method_not_allowed")
        assert_bilingual(c.get("/admin/users").json(), "forbidden")
        assert_bilingual(c.post("/documents", content=b"x").json(), "unsupported_media_type")
        assert_bilingual(c.get("/nowhere").json(), "not_found")
        # FastAPI's own validation: the parameter named, its bound in Korean too.
        message = assert_bilingual(
            c.get("/search", params={"q": "x" * 5000}).json(), "validation_error"
        )
        assert message.startswith("query.q: 1000자 이하") and "query.q: String" in message
        message = assert_bilingual(
            c.get("/search", params={"page": "one"}).json(), "validation_error"
        )
        assert message.startswith("query.page: 숫자여야 합니다")
    with server.client("admin") as c:
        c.post("/admin/ministries", json={"code": "ERRS2", "name": "중복부"})
        r = c.post("/admin/ministries", json={"code": "ERRS2", "name": "중복부"})
        assert_bilingual(r.json(), "conflict")


def test_a_query_with_too_many_words_is_422(server: Server, member: str) -> None:
    words = " ".join(f"낱말{i}" for i in range(MAX_CLAUSES + 1))
    with server.client(member) as c:
        r = c.get("/search", params={"q": words})
    assert r.status_code == 422, r.text
    assert_bilingual(r.json(), "invalid_query")


@pytest.mark.parametrize(
    "paging",
    [{"page": 0}, {"size": 1000}, {"size": 0}, {"page": 10_001}, {"page": 9999, "size": 100}],
)
def test_invalid_paging_is_422_like_every_invalid_parameter(
    server: Server, member: str, paging: dict[str, int]
) -> None:
    with server.client(member) as c:
        r = c.get("/search", params={"q": "x", **paging})
    assert r.status_code == 422, r.text
    assert_bilingual(r.json(), "validation_error")


def test_friendly_content_type_filters(server: Server, member: str) -> None:
    server.upload(member, "친환경 조달 지침 본문".encode(), "지침.txt")
    server.upload(member, b"%PDF-1.4 not really a pdf", "fake.bin", wait=True)
    for value in ("txt", "TXT", ".txt", "text/plain", "text/plain; charset=utf-8"):
        found = server.search(member, content_type=value)
        assert found["total"] == 1 and found["hits"][0]["filename"] == "지침.txt", value
        assert found["warnings"] == []
    assert server.search(member, content_type="docx")["total"] == 0
    assert server.search(member, content_type="docx")["warnings"] == []


def test_short_names_find_real_pdf_hwp_hwpx_and_docx_files(server: Server) -> None:
    pytest.importorskip("iscc_tika", reason="the embedded extractor needs iscc-tika")
    owner = server.user("formats.park", "FMT-A", ministry="FMT")
    files = {
        "pdf": ("plan.pdf", text_pdf("formatcheck plan")),
        "hwp": ("공고.hwp", hwp5_file([para_text("formatcheck 한글 공고")])),
        "hwpx": (
            "공고.hwpx",
            hwpx_file([hwpx_section(hwpx_paragraph("<hp:t>formatcheck</hp:t>"))]),
        ),
        "docx": ("memo.docx", docx_bytes("formatcheck memo")),
    }
    made = {short: server.upload(owner, data, name)["id"] for short, (name, data) in files.items()}
    for short, doc_id in made.items():
        for value in (short, short.upper(), "." + short):
            found = server.search(owner, q="formatcheck", content_type=value)
            assert [h["id"] for h in found["hits"]] == [doc_id], (value, found)
            assert found["warnings"] == []


def test_unknown_filter_values_are_reported(server: Server, member: str) -> None:
    server.upload(member, "예산 편성 지침".encode(), "예산.txt")
    result = server.search(member, q="예산", content_type="spreadsheet-ish")
    assert result["total"] == 0
    [warning] = result["warnings"]
    assert warning["code"] == "unknown_content_type"
    assert "spreadsheet-ish" in warning["message"] and "pdf" in warning["message"]
    assert HANGUL.search(warning["message"].partition(" · ")[0])

    result = server.search(member, q="예산", department="NOPE-X", ministry="NOPE")
    assert result["total"] == 0
    assert {w["code"] for w in result["warnings"]} == {"unknown_department", "unknown_ministry"}
    assert any("NOPE-X" in w["message"] for w in result["warnings"])


def test_departments_and_ministries_by_code_in_any_case_or_by_name(
    server: Server, member: str
) -> None:
    with server.client("admin") as c:
        c.post("/admin/ministries", json={"code": "NAMED", "name": "이름부"})
        c.post(
            "/admin/departments", json={"code": "NAMED-A", "name": "이름과", "ministry": "NAMED"}
        )
    writer = server.user("named.lee", "NAMED-A", ministry="NAMED")
    server.upload(writer, "이름으로 찾는 문서".encode(), "이름.txt", visibility="government")
    for department in ("NAMED-A", "named-a", "이름과"):
        result = server.search(member, q="이름으로", department=department)
        assert result["total"] == 1 and result["warnings"] == [], department
    for ministry in ("NAMED", "named", "이름부"):
        result = server.search(member, q="이름으로", ministry=ministry)
        assert result["total"] == 1 and result["warnings"] == [], ministry


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A real `crossdoc serve` process (its own uvicorn, as operators run it)."""
    data = Path(tmp_path_factory.mktemp("served")) / "data"
    prepare_data_dir(data)
    process = ServeProcess(data)
    try:
        yield process
    finally:
        process.stop()


def test_the_real_server_answers_malformed_and_oversized_requests_in_json(
    served: ServeProcess,
) -> None:
    token = served.token
    fake = Server(served.base, services=None)  # type: ignore[arg-type]
    search = b"/api/v1/search?q="
    cases: list[tuple[bytes, int, str]] = [
        # Raw UTF-8 in the request line (curl without --data-urlencode).
        (_get(fake, "/api/v1/search?q=출생신고".encode(), token), 400, "bad_request"),
        # A garbled request line.
        (b"\x16\x03\x01 hello\r\n\r\n", 400, "bad_request"),
        # A query string over 8 KB: the app's own 422, naming the parameter.
        (_get(fake, search + b"x" * 9000, token), 422, "validation_error"),
        (_get(fake, search + quote("가" * 3000).encode(), token), 422, "validation_error"),
        # Beyond any URL we read.
        (_get(fake, search + quote("가" * 10_000).encode(), token), 414, "uri_too_long"),
        # A request head over the limit.
        (_get(fake, b"/api/v1/me", token, b"X-Pad: " + b"a" * 200_000 + b"\r\n"), 431,
         "request_header_fields_too_large"),
    ]  # fmt: skip
    for head, status, code in cases:
        got, headers, body = _raw(fake, head)
        assert got == status, (head[:60], got, body[:200])
        assert headers["content-type"] == "application/json", headers
        assert_bilingual(json.loads(body), code)
    with served.client() as c:
        assert c.get("/me").status_code == 200  # still serving
