"""Documents over HTTP: upload durability, downloads, versions, hostile names, limits, 404s."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    return {
        "owner": server.user("owner", "MOIS-A"),
        "colleague": server.user("colleague", "MOIS-A"),
        "outsider": server.user("outsider", "MOHW-B", ministry="MOHW"),
        "deptadmin": server.user("deptadmin", "MOIS-A", roles=["member", "dept_admin"]),
    }


def test_upload_then_download_is_byte_identical(server: Server, users: dict[str, str]) -> None:
    content = os.urandom(300_000) + "한글 내용".encode()
    doc = server.upload("owner", content, "보고서.bin", title="연간 보고서")
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["size"] == len(content)
    assert doc["department"] == "MOIS-A" and doc["ministry"] == "MOIS"
    assert doc["owner"] == "owner" and doc["visibility"] == "department"
    assert doc["status"] in ("indexed", "failed")
    with server.client("colleague") as c:
        r = c.get(f"/documents/{doc['id']}/content")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == doc["sha256"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%EB%B3%B4%EA%B3%A0%EC%84%9C.bin" in r.headers["content-disposition"]


def test_upload_answers_202_with_pending_or_later(server: Server, users: dict[str, str]) -> None:
    with server.client("owner") as c:
        r = c.post("/documents", files={"file": ("a.txt", b"hello crossdoc")})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] in ("pending", "indexed")
    assert set(body) >= {
        "id",
        "title",
        "filename",
        "content_type",
        "size",
        "sha256",
        "department",
        "ministry",
        "owner",
        "visibility",
        "tags",
        "status",
        "status_detail",
        "created_at",
        "updated_at",
        "version",
    }
    # Durable before the answer: the catalog row and the blob exist right now.
    record = server.services.catalog.documents.get(body["id"])
    assert server.services.store.exists(record.blob_key)


def test_idempotency_key_makes_one_document(server: Server, users: dict[str, str]) -> None:
    headers = {"Idempotency-Key": "upload-42"}
    with server.client("owner") as c:
        first = c.post("/documents", files={"file": ("x.txt", b"same")}, headers=headers).json()
        second = c.post("/documents", files={"file": ("x.txt", b"same")}, headers=headers).json()
    assert first["id"] == second["id"]


@pytest.mark.parametrize(
    ("evil", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\x00.pdf", "a.pdf"),
        ("report\u202egnp.exe", "reportgnp.exe"),
        ("line\r\nInjected: yes.txt", '"line'),  # a raw CRLF ends the part's header
        ("quo\"te's.txt", "quo\"te's.txt"),
        ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
        ("C:\\Users\\kim\\문서.hwp", "문서.hwp"),
    ],
)
def test_hostile_filenames_are_sanitised(
    server: Server, users: dict[str, str], evil: str, expected: str
) -> None:
    # Built by hand: HTTP clients would percent-encode the control characters,
    # and an attacker's client would not.
    boundary = "hostileboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + evil.replace('"', '\\"').encode("utf-8")
        + f'"\r\n\r\ncontent of a file\r\n--{boundary}--\r\n'.encode()
    )
    with server.client("owner") as c:
        r = c.post(
            "/documents?allow_duplicate=true",  # the same content each time
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["filename"] == expected
    with server.client("owner") as c:
        r = c.get(f"/documents/{doc['id']}/content")
    disposition = r.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.count('"') == 2  # the ASCII fallback is quoted once, no quote inside
    # Stored under a content-addressed key, never under the name.
    record = server.services.catalog.documents.get(doc["id"])
    assert record.blob_key.startswith("blobs/sha256/")


def test_too_large_upload_is_413_and_stores_nothing(server: Server, users: dict[str, str]) -> None:
    limit = server.services.settings.max_upload_bytes
    before = server.services.catalog.documents.count()
    spool = server.services.settings.spool_dir
    with server.client("owner") as c:
        r = c.post("/documents", files={"file": ("big.bin", b"\0" * (limit + 1))})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert server.services.catalog.documents.count() == before
    assert not list(spool.glob("upload-*"))


def test_chunked_upload_without_length_is_cut_at_the_limit(
    server: Server, users: dict[str, str]
) -> None:
    limit = server.services.settings.max_upload_bytes
    boundary = "crossdocboundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="endless.bin"\r\n\r\n'
        ).encode()
        sent = 0
        chunk = b"\1" * 65536
        while sent < limit * 3:  # far more than allowed; the server must stop reading
            yield chunk
            sent += len(chunk)
        yield f"\r\n--{boundary}--\r\n".encode()

    before = server.services.catalog.documents.count()
    with server.client("owner") as c:
        try:
            r = c.post(
                "/documents",
                content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert r.status_code == 413
        except httpx.HTTPError:
            pass  # the server may close the connection once it has answered 413
    assert server.services.catalog.documents.count() == before


def test_upload_needs_a_file_part(server: Server, users: dict[str, str]) -> None:
    with server.client("owner") as c:
        r = c.post("/documents", data={"title": "no file"}, files={"other": ("a", b"b")})
        assert r.status_code == 422
        r = c.post("/documents", json={"title": "json"})
        assert r.status_code == 415
        r = c.post("/documents", files={"file": ("a.txt", b"x")}, data={"visibility": "everyone"})
        assert r.status_code == 422


def test_content_type_is_detected_not_trusted(server: Server, users: dict[str, str]) -> None:
    exe = b"MZ\x90\x00" + os.urandom(2000)
    doc = server.upload("owner", exe, "invoice.pdf")
    assert doc["content_type"] != "application/pdf"
    html = b"<html><body><script>alert(1)</script>hello</body></html>"
    doc = server.upload("owner", html, "report.pdf")
    assert "pdf" not in doc["content_type"]
    with server.client("owner") as c:
        r = c.get(f"/documents/{doc['id']}/content")
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_new_version_keeps_the_old_one(server: Server, users: dict[str, str]) -> None:
    doc = server.upload("owner", b"version one text", "v.txt")
    with server.client("owner") as c:
        r = c.put(f"/documents/{doc['id']}/content", files={"file": ("v.txt", b"version two")})
        assert r.status_code == 202, r.text
        assert r.json()["version"] == 2
        versions = c.get(f"/documents/{doc['id']}/versions").json()
        assert [v["version"] for v in versions] == [1, 2]
        old = c.get(f"/documents/{doc['id']}/versions/1/content")
        assert old.content == b"version one text"
        assert c.get(f"/documents/{doc['id']}/content").content == b"version two"
    with server.client("outsider") as c:
        r = c.put(f"/documents/{doc['id']}/content", files={"file": ("v.txt", b"evil")})
        assert r.status_code == 404


def test_readers_cannot_write_and_only_managers_delete(
    server: Server, users: dict[str, str]
) -> None:
    doc = server.upload("owner", b"team document", "team.txt")
    with server.client("colleague") as c:
        assert (
            c.put(f"/documents/{doc['id']}/content", files={"file": ("t.txt", b"x")}).status_code
            == 403
        )
        assert c.delete(f"/documents/{doc['id']}").status_code == 403
        assert c.get(f"/documents/{doc['id']}/acl").status_code == 403
    with server.client("deptadmin") as c:
        assert c.get(f"/documents/{doc['id']}/acl").status_code == 200
        assert c.delete(f"/documents/{doc['id']}").status_code == 204
    with server.client("owner") as c:
        assert c.get(f"/documents/{doc['id']}").status_code == 404
    # Deleted is hidden, never destroyed: the bytes are still in the object store.
    record = server.services.catalog.documents.get(doc["id"], include_deleted=True)
    assert server.services.store.exists(record.blob_key)


def test_unreadable_and_missing_answer_the_same_404(server: Server, users: dict[str, str]) -> None:
    doc = server.upload("owner", b"secret plan", "plan.txt", visibility="private")
    missing = "0" * 32
    with server.client("outsider") as c:
        for doc_id in (doc["id"], missing, "not-an-id"):
            for method, path in (
                ("GET", ""),
                ("GET", "/content"),
                ("GET", "/acl"),
                ("GET", "/versions"),
                ("GET", "/versions/1/content"),
                ("PUT", "/acl"),
                ("DELETE", ""),
                ("PATCH", ""),
            ):
                kwargs: dict[str, object] = {}
                if method == "PUT":
                    kwargs["json"] = {"visibility": "government", "grants": []}
                if method == "PATCH":
                    kwargs["json"] = {"title": "x"}
                r = c.request(method, f"/documents/{doc_id}{path}", **kwargs)  # type: ignore[arg-type]
                assert r.status_code == 404, (method, path, doc_id, r.text)
                assert r.json() == {
                    "error": {
                        "code": "not_found",
                        "message": "찾을 수 없습니다 · document not found",
                    }
                }


def test_zero_byte_file_is_stored_and_marked(server: Server, users: dict[str, str]) -> None:
    doc = server.upload("owner", b"", "empty.txt", title="빈 파일")
    assert doc["size"] == 0
    # Stored, found by its title, without text: not a failure (issue 14).
    assert doc["status"] == "indexed" and doc["status_detail"] == "empty"
    assert doc["has_text"] is False
    with server.client("owner") as c:
        assert c.get(f"/documents/{doc['id']}/content").content == b""
    hits = server.search("owner", q="빈 파일")["hits"]
    assert doc["id"] in [h["id"] for h in hits]


def test_cp949_text_is_decoded(server: Server, users: dict[str, str]) -> None:
    text = "출생신고 안내문: 주민센터에서 접수합니다."
    doc = server.upload("owner", text.encode("cp949"), "안내.txt")
    assert doc["status"] == "indexed", doc
    hits = server.search("owner", q="주민센터")["hits"]
    assert doc["id"] in [h["id"] for h in hits]
