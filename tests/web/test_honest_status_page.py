"""The document page says a stored file without text has no text, not that it failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server
from tests.web.conftest import browser_client, sign_in


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("web-status"))


def test_a_document_without_text_reads_no_text_with_the_reason(server: Server) -> None:
    member = server.user("web.status", "MOIS-WST")
    empty = server.upload(member, b"", "빈 문서.txt", title="빈 문서")
    broken = server.upload(member, b"%PDF-1.7\n1 0 obj\n<< /Type", "깨진.pdf")
    assert empty["status"] == "indexed" and broken["status"] == "failed"
    with browser_client(server) as client:
        sign_in(client, member)
        page = client.get(f"/documents/{empty['id']}").text
        assert "텍스트 없음: 파일에 텍스트가 없습니다" in page
        assert "텍스트 추출 실패" not in page
        page = client.get(f"/documents/{broken['id']}").text
        assert "텍스트 추출 실패: 파일이 손상되었거나 읽을 수 없습니다" in page
