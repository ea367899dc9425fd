"""The personal pages of the web UI (내 문서, 공유받은 문서, 최근 문서, 휴지통): the API's
lists rendered in Korean first, and the trash's restore button (a CSRF-checked form)."""

from __future__ import annotations

from tests.conftest import Server
from tests.web.conftest import browser_client, csrf_of, sign_in


def test_personal_pages_list_what_the_api_lists_and_restore_from_the_trash(
    server: Server,
) -> None:
    server.user("pg.kim", "PG-REC")
    server.user("pg.lee", "PG-POL", ministry="PG")
    mine = server.upload("pg.kim", "내 문서 화면".encode(), "mine.txt", title="화면 시험 문서")
    shared = server.upload(
        "pg.kim",
        "공유 화면".encode(),
        "shared.txt",
        title="공유한 문서",
        visibility="private",
        grants=[{"principal": "user:pg.lee"}],
    )
    with server.client("pg.kim") as c:
        assert c.delete(f"/documents/{mine['id']}").status_code == 204
    with browser_client(server) as kim, browser_client(server) as lee:
        sign_in(kim, "pg.kim")
        sign_in(lee, "pg.lee")
        page = kim.get("/me/documents")
        assert page.status_code == 200, page.text
        assert "내 문서" in page.text and "공유한 문서" in page.text
        assert "화면 시험 문서" not in page.text  # in the trash
        page = lee.get("/me/shared")
        assert "공유한 문서" in page.text and "pg.kim님이" in page.text
        assert lee.get(f"/documents/{shared['id']}").status_code == 200
        assert "공유한 문서" in lee.get("/me/recent").text
        assert "화면 시험 문서" not in lee.get("/trash").text
        trash = kim.get("/trash")
        assert "화면 시험 문서" in trash.text and "복원" in trash.text
        # Without the CSRF field: refused, nothing restored.
        refused = kim.post(f"/trash/{mine['id']}/restore", data={})
        assert refused.status_code == 403
        done = kim.post(f"/trash/{mine['id']}/restore", data={"csrf_token": csrf_of(kim)})
        assert done.status_code == 303 and done.headers["location"].startswith("/trash?")
        assert "문서를 복원했습니다" in kim.get(done.headers["location"]).text
        assert "화면 시험 문서" in kim.get("/me/documents").text
        # Someone who may not manage it: the same "not found" page as a missing document.
        lost = lee.post(f"/trash/{shared['id']}/restore", data={"csrf_token": csrf_of(lee)})
        assert lost.status_code == 404
        # English on request.
        kim.cookies.set("crossdoc_lang", "en")
        assert "Shared with me" in kim.get("/me/shared").text
