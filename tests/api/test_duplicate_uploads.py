"""Duplicate uploads over HTTP: the department's existing document answers, nothing is stored twice.

The same bytes (SHA-256) uploaded again to a department that holds them in a
live document the uploader may read answer `200` with that document and
`"duplicate_of"`; `allow_duplicate=true` (query or form field) makes a new
document (`202`). A colleague's private document never answers (nor shows that
it exists), a deleted one neither; two identical uploads at once make one.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from storage.catalog.records import AuditFilter
from tests.conftest import Server


@pytest.fixture(scope="module")
def org(server: Server) -> dict[str, str]:
    return {
        "kim": server.user("dup.kim", "MOIS-DUP", ministry="MOIS"),
        "lee": server.user("dup.lee", "MOIS-DUP", ministry="MOIS"),
        "park": server.user("dup.park", "MOHW-DUP", ministry="MOHW"),
    }


def post(
    server: Server, user: str, content: bytes, name: str = "보고서.txt", **data: str
) -> httpx.Response:
    params = {"allow_duplicate": data.pop("query_allow")} if "query_allow" in data else {}
    with server.client(user) as c:
        return c.post("/documents", files={"file": (name, content)}, data=data, params=params)


def count(server: Server) -> int:
    return server.services.catalog.documents.count()


def test_the_same_bytes_again_answer_the_existing_document(
    server: Server, org: dict[str, str]
) -> None:
    content = "2026년 예산 편성 지침 (중복 시험)".encode()
    first = post(server, org["kim"], content, "지침.txt")
    assert first.status_code == 202, first.text
    assert first.json()["duplicate_of"] is None
    before = count(server)
    # Another member of the department, another file name: the same bytes.
    again = post(server, org["lee"], content, "지침-사본.txt", title="사본")
    assert again.status_code == 200, again.text
    body: dict[str, Any] = again.json()
    assert body["id"] == first.json()["id"] and body["duplicate_of"] == first.json()["id"]
    assert body["filename"] == "지침.txt" and body["owner"] == org["kim"]
    assert count(server) == before  # nothing recorded
    with server.client(org["lee"]) as c:
        versions = c.get(f"/documents/{body['id']}/versions").json()
    assert len(versions) == 1
    # Audited as an upload answered by the existing document.
    records = server.services.catalog.audit.page(
        AuditFilter(actor=org["lee"], action="upload", target=body["id"])
    )
    assert [r.detail.get("duplicate_of") for r in records] == [body["id"]]


@pytest.mark.parametrize("how", ["query", "form"])
def test_allow_duplicate_makes_a_new_document(
    server: Server, org: dict[str, str], how: str
) -> None:
    content = f"일부러 다시 올리는 같은 파일 ({how})".encode()
    first = post(server, org["kim"], content)
    assert first.status_code == 202
    flag = {"query_allow": "true"} if how == "query" else {"allow_duplicate": "true"}
    second = post(server, org["kim"], content, **flag)
    assert second.status_code == 202, second.text
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["duplicate_of"] is None


def test_allow_duplicate_must_be_a_boolean(server: Server, org: dict[str, str]) -> None:
    r = post(server, org["kim"], b"whatever", allow_duplicate="maybe")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


def test_another_department_gets_its_own_document(server: Server, org: dict[str, str]) -> None:
    content = "부처 간 같은 공문".encode()
    mine = post(server, org["kim"], content)
    theirs = post(server, org["park"], content)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_private_document_of_a_colleague_never_answers(
    server: Server, org: dict[str, str]
) -> None:
    content = "김 주무관만 보는 메모".encode()
    private = post(server, org["kim"], content, visibility="private")
    assert private.status_code == 202
    colleague = post(server, org["lee"], content)
    assert colleague.status_code == 202, colleague.text  # a document of their own
    assert colleague.json()["id"] != private.json()["id"]
    assert colleague.json()["duplicate_of"] is None
    # The owner's own private document does answer the owner.
    mine = post(server, org["kim"], content)
    assert mine.status_code == 200 and mine.json()["duplicate_of"] == private.json()["id"]


def test_a_deleted_document_does_not_answer(server: Server, org: dict[str, str]) -> None:
    content = "지운 뒤 다시 올린 문서".encode()
    first = post(server, org["kim"], content).json()
    with server.client(org["kim"]) as c:
        assert c.delete(f"/documents/{first['id']}").status_code == 204
    again = post(server, org["kim"], content)
    assert again.status_code == 202 and again.json()["id"] != first["id"]


def test_identical_uploads_at_once_make_one_document(server: Server, org: dict[str, str]) -> None:
    """Uploads that share one group commit are decided by its leader: one document."""
    content = "동시에 여러 번 누른 올리기 단추".encode()
    before = count(server)
    answers: list[httpx.Response] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        answers.append(post(server, org["kim"], content, "같은파일.txt"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 8
    assert sorted(r.status_code for r in answers) == [200] * 7 + [202], [
        (r.status_code, r.text[:100]) for r in answers
    ]
    assert len({r.json()["id"] for r in answers}) == 1
    assert count(server) == before + 1


def test_an_idempotent_retry_is_still_a_replay(server: Server, org: dict[str, str]) -> None:
    content = "재시도 열쇠와 함께 올린 문서".encode()
    headers = {"Idempotency-Key": "dup-retry-1"}
    with server.client(org["kim"]) as c:
        first = c.post("/documents", files={"file": ("r.txt", content)}, headers=headers)
        retry = c.post("/documents", files={"file": ("r.txt", content)}, headers=headers)
        other_key = c.post(
            "/documents", files={"file": ("r.txt", content)}, headers={"Idempotency-Key": "k2"}
        )
    assert first.status_code == 202 and retry.status_code == 202
    assert retry.json()["id"] == first.json()["id"] and retry.json()["duplicate_of"] is None
    assert other_key.status_code == 200
    assert other_key.json()["duplicate_of"] == first.json()["id"]
