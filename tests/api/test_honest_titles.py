"""Honest titles over HTTP: typed titles stay, placeholders give way, new versions keep the title.

Titles change only when asked: a title the uploader typed is never overwritten
(by the file's metadata, by a new version); a title the file records that is a
template's filler or body text gives way to the file name; a new version keeps
the title the document had.
"""

from __future__ import annotations

import pytest

from tests.conftest import Server
from tests.hangul_fixtures import hwpx_file, hwpx_paragraph, hwpx_section


@pytest.fixture(scope="module")
def owner(server: Server) -> str:
    return server.user("titler", "MOIS-TTL", ministry="MOIS")


def hwpx(title: str, body: str = "주민등록 사실조사 결과 보고") -> bytes:
    return hwpx_file([hwpx_section(hwpx_paragraph(f"<hp:t>{body}</hp:t>"))], title=title)


def new_version(server: Server, owner: str, doc_id: str, content: bytes, filename: str) -> None:
    with server.client(owner) as c:
        r = c.put(f"/documents/{doc_id}/content", files={"file": (filename, content)})
        assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    "placeholder",
    ["본문내용본문내용", "테스트", "Start", "제목 없음", "Untitled", "Microsoft Word - 초안.docx"],
)
def test_placeholder_metadata_titles_give_way_to_the_file_name(
    server: Server, owner: str, placeholder: str
) -> None:
    doc = server.upload(owner, hwpx(placeholder), "2026년 주민등록 사실조사 결과.hwpx")
    assert doc["status"] == "indexed", doc
    assert doc["title"] == "2026년 주민등록 사실조사 결과.hwpx", doc


def test_a_real_metadata_title_still_replaces_the_file_name(server: Server, owner: str) -> None:
    doc = server.upload(owner, hwpx("주민등록 사실조사 결과 보고"), "hwp0001.hwpx")
    assert doc["title"] == "주민등록 사실조사 결과 보고", doc


def test_a_typed_title_survives_a_new_version_and_its_metadata(server: Server, owner: str) -> None:
    doc = server.upload(owner, hwpx("파일 속 제목"), "first.hwpx", title="직접 입력한 제목")
    assert doc["title"] == "직접 입력한 제목"
    new_version(server, owner, doc["id"], hwpx("새 파일 속 제목", "둘째 판 본문"), "second.hwpx")
    doc = server.wait_indexed(owner, doc["id"])
    assert doc["version"] == 2 and doc["filename"] == "second.hwpx"
    assert doc["title"] == "직접 입력한 제목", doc


def test_a_new_version_keeps_the_automatic_title(server: Server, owner: str) -> None:
    doc = server.upload(owner, hwpx("출생통보제 시행 계획"), "plan.hwpx")
    assert doc["title"] == "출생통보제 시행 계획"
    new_version(server, owner, doc["id"], hwpx("다른 제목", "고친 본문"), "plan-수정본.hwpx")
    doc = server.wait_indexed(owner, doc["id"])
    assert doc["version"] == 2 and doc["filename"] == "plan-수정본.hwpx"
    assert doc["title"] == "출생통보제 시행 계획", doc
    # The index holds the kept title too, and the new version's text.
    hits = server.search(owner, q="고친 본문")["hits"]
    assert [h["title"] for h in hits if h["id"] == doc["id"]] == ["출생통보제 시행 계획"]


def test_a_new_version_of_a_file_name_title_keeps_the_first_name(
    server: Server, owner: str
) -> None:
    doc = server.upload(owner, "첫 판 본문".encode(), "회의록-초안.txt")
    assert doc["title"] == "회의록-초안.txt"
    new_version(server, owner, doc["id"], "둘째 판 본문".encode(), "회의록-최종.txt")
    doc = server.wait_indexed(owner, doc["id"])
    assert doc["title"] == "회의록-초안.txt" and doc["filename"] == "회의록-최종.txt", doc
