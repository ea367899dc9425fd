"""`Idempotency-Key` on uploads, over HTTP: a retry of the same upload replays the
first answer; the key with anything else is refused and stores nothing; a key
whose document was deleted never answers the dead id; keys are per user."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from storage.objectstore.base import blob_key_for
from tests.conftest import Server


@pytest.fixture(scope="module")
def users(server: Server) -> dict[str, str]:
    return {
        "kim": server.user("idem-kim", "MOIS-I"),
        "lee": server.user("idem-lee", "MOIS-I"),
    }


def _post(
    server: Server,
    user: str,
    key: str,
    content: bytes,
    filename: str = "a.txt",
    **fields: str,
) -> httpx.Response:
    with server.client(user) as c:
        return c.post(
            "/documents",
            files={"file": (filename, content)},
            data=fields,
            headers={"Idempotency-Key": key},
        )


def _refused(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 409, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    return error


def test_the_same_upload_again_replays_the_first_answer(
    server: Server, users: dict[str, str]
) -> None:
    before = server.services.catalog.documents.count()
    fields = {"title": "회의록", "visibility": "ministry", "tags": "회의,2026"}
    first = _post(server, users["kim"], "replay-1", b"same bytes", "m.txt", **fields)
    # Tags in another order are the same set.
    again = _post(
        server, users["kim"], "replay-1", b"same bytes", "m.txt", **(fields | {"tags": "2026,회의"})
    )
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["sha256"] == hashlib.sha256(b"same bytes").hexdigest()
    assert server.services.catalog.documents.count() == before + 1


def test_the_key_with_other_bytes_is_refused_and_they_are_not_stored(
    server: Server, users: dict[str, str]
) -> None:
    first = _post(server, users["kim"], "key-1", b"the content of a.txt", "a.txt")
    assert first.status_code == 202, first.text
    before = server.services.catalog.documents.count()
    other = b"the content of b.txt, never stored"

    error = _refused(_post(server, users["kim"], "key-1", other, "b.txt"))

    assert "Idempotency-Key" in error["message"]
    assert server.services.catalog.documents.count() == before
    # Refused before the bytes were stored: no blob that nothing refers to.
    assert not server.services.store.exists(blob_key_for(hashlib.sha256(other).hexdigest()))
    assert not list(server.services.settings.spool_dir.glob("upload-*"))
    # The first upload is untouched, and its retry still replays it.
    again = _post(server, users["kim"], "key-1", b"the content of a.txt", "a.txt")
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "change",
    [
        {"filename": "other-name.txt"},
        {"title": "다른 제목"},
        {"visibility": "private"},
        {"tags": "다른태그"},
    ],
)
def test_the_key_with_other_fields_is_refused(
    server: Server, users: dict[str, str], change: dict[str, str]
) -> None:
    key = f"fields-{sorted(change)[0]}"
    base = {"filename": "f.txt", "title": "제목", "visibility": "department", "tags": "가"}
    content = f"same bytes, other fields ({key})".encode()  # bytes of their own per case
    first = _post(server, users["kim"], key, content, **base)
    assert first.status_code == 202, first.text
    _refused(_post(server, users["kim"], key, content, **(base | change)))


def test_the_key_with_another_folder_is_refused(server: Server, users: dict[str, str]) -> None:
    kim = users["kim"]
    with server.client(kim) as c:
        one, two = (c.post("/folders", json={"name": f"멱등 {n}"}).json()["id"] for n in (1, 2))
    content = b"same bytes, another folder"
    first = _post(server, kim, "folder-key", content, folder=one)
    assert first.status_code == 202, first.text
    assert _post(server, kim, "folder-key", content, folder=one).json()["id"] == first.json()["id"]
    _refused(_post(server, kim, "folder-key", content, folder=two))


def test_a_key_whose_document_was_deleted_never_answers_the_dead_id(
    server: Server, users: dict[str, str]
) -> None:
    first = _post(server, users["kim"], "deleted-1", b"deleted later", "d.txt")
    assert first.status_code == 202, first.text
    doc_id = first.json()["id"]
    with server.client(users["kim"]) as c:
        assert c.delete(f"/documents/{doc_id}").status_code == 204

    error = _refused(_post(server, users["kim"], "deleted-1", b"deleted later", "d.txt"))

    assert "deleted" in error["message"]
    with server.client(users["kim"]) as c:
        assert c.get(f"/documents/{doc_id}").status_code == 404
    # A new key uploads the same bytes as a new document.
    fresh = _post(server, users["kim"], "deleted-2", b"deleted later", "d.txt")
    assert fresh.status_code == 202 and fresh.json()["id"] != doc_id


def test_keys_belong_to_their_user(server: Server, users: dict[str, str]) -> None:
    kim = _post(server, users["kim"], "shared-name", b"kim's file", "k.txt")
    lee = _post(server, users["lee"], "shared-name", b"lee's file", "l.txt")
    assert kim.status_code == lee.status_code == 202, lee.text
    assert kim.json()["id"] != lee.json()["id"]
    assert lee.json()["owner"] == users["lee"]
