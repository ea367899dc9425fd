"""The document page shows the folder a document is filed in (Korean first)."""

from __future__ import annotations

from tests.conftest import Server
from tests.web.conftest import browser_client, sign_in


def test_the_document_page_shows_its_folder_path(server: Server) -> None:
    server.user("web.fld", "WEBF-REC", ministry="WEBF")
    with server.client("web.fld") as c:
        top = c.post("/folders", json={"name": "기록물"}).json()
        sub = c.post("/folders", json={"name": "2026년", "parent": top["id"]}).json()
        r = c.post("/documents", files={"file": ("a.txt", b"x")}, data={"folder": sub["id"]})
        assert r.status_code == 202, r.text
        filed = r.json()["id"]
        r = c.post("/documents", files={"file": ("b.txt", b"y")})
        plain = r.json()["id"]
    with browser_client(server) as client:
        sign_in(client, "web.fld")
        page = client.get(f"/documents/{filed}")
        assert page.status_code == 200, page.text
        assert "<dt>폴더</dt><dd>/기록물/2026년</dd>" in page.text
        assert "<dt>폴더</dt>" not in client.get(f"/documents/{plain}").text
