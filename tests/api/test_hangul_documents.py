"""Hangul documents over HTTP: text searchable, and a title from the file's metadata.

A title recorded in the file (HWP summary information, HWPX package metadata)
replaces the file-name default, never a title the uploader typed, and never
one set later with PATCH.
"""

from __future__ import annotations

import pytest

from tests.conftest import Server
from tests.hangul_fixtures import hwp5_file, hwpx_file, hwpx_paragraph, hwpx_section, para_text

pytest.importorskip("iscc_tika", reason="the embedded extractor needs the iscc-tika package")


@pytest.fixture(scope="module")
def owner(server: Server) -> str:
    return server.user("hangul-owner", "MOIS-HWP")


def hwpx_notice(title: str, body: str) -> bytes:
    return hwpx_file([hwpx_section(hwpx_paragraph(f"<hp:t>{body}</hp:t>"))], title=title)


def test_hwpx_metadata_title_replaces_the_file_name(server: Server, owner: str) -> None:
    data = hwpx_notice("강남구 무궁화동산 정비 공고", "무궁화동산 정비사업 입찰 공고문")
    doc = server.upload(owner, data, "notice.hwpx")
    assert doc["status"] == "indexed", doc
    assert doc["title"] == "강남구 무궁화동산 정비 공고"
    assert doc["content_type"] == "application/hwp+zip"
    hits = server.search(owner, q="입찰")["hits"]
    assert [hit["title"] for hit in hits if hit["id"] == doc["id"]] == [
        "강남구 무궁화동산 정비 공고"
    ]
    # The title is searchable too (it is what the index holds as the title).
    assert doc["id"] in {hit["id"] for hit in server.search(owner, q="정비")["hits"]}


def test_hwp5_metadata_title_and_distribution_text(server: Server, owner: str) -> None:
    data = hwp5_file(
        [para_text("배포용 복지관 시설관리 용역 공고")],
        distribution=True,
        title="복지관 시설관리 공고",
    )
    doc = server.upload(owner, data, "dist.hwp")
    assert doc["status"] == "indexed", doc
    assert doc["title"] == "복지관 시설관리 공고"
    assert doc["content_type"] == "application/x-hwp"
    assert doc["id"] in {hit["id"] for hit in server.search(owner, q="용역")["hits"]}


def test_typed_title_wins_over_metadata(server: Server, owner: str) -> None:
    data = hwpx_notice("파일 속 제목", "본문 내용")
    doc = server.upload(owner, data, "typed.hwpx", title="직접 입력한 제목")
    assert doc["status"] == "indexed"
    assert doc["title"] == "직접 입력한 제목"


def test_title_set_later_is_not_overwritten_by_reindexing(server: Server, owner: str) -> None:
    data = hwpx_notice("파일 속 두번째 제목", "두번째 본문")
    doc = server.upload(owner, data, "later.hwpx")
    assert doc["title"] == "파일 속 두번째 제목"
    with server.client(owner) as c:
        r = c.patch(f"/documents/{doc['id']}", json={"title": "나중에 고친 제목"})
        assert r.status_code == 200, r.text
    doc = server.wait_indexed(owner, doc["id"])
    assert doc["title"] == "나중에 고친 제목"


def test_file_without_metadata_title_keeps_its_file_name(server: Server, owner: str) -> None:
    doc = server.upload(owner, hwp5_file([para_text("제목 없는 문서")]), "제목없음.hwp")
    assert doc["status"] == "indexed"
    assert doc["title"] == "제목없음.hwp"
