"""Malformed multipart bodies, over HTTP: a body cut short (no closing boundary,
headers cut off, nothing at all) is 400 and stores nothing: no row, no blob, no
spool file. A complete body is still accepted, with or without an epilogue."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from storage.objectstore.base import blob_key_for
from tests.conftest import Server

BOUNDARY = "B0undary"
FILE_PART = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="cut.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
)
CONTENT = "0123456789 잘린 본문"


@pytest.fixture(scope="module")
def user(server: Server) -> str:
    return server.user("framing", "MOIS-M")


def _post(
    server: Server, user: str, body: bytes, path: str = "/documents"
) -> tuple[int, dict[str, Any]]:
    with server.client(user) as c:
        r = c.request(
            "PUT" if path.endswith("/content") else "POST",
            path,
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    return r.status_code, r.json()


def _nothing_stored(server: Server, before: int) -> None:
    assert server.services.catalog.documents.count() == before
    sha = hashlib.sha256(CONTENT.encode()).hexdigest()
    assert not server.services.store.exists(blob_key_for(sha))
    assert not list(server.services.settings.spool_dir.glob("upload-*"))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(FILE_PART + CONTENT, id="no-closing-boundary"),
        pytest.param(FILE_PART + CONTENT + "\r\n", id="cut-after-crlf"),
        pytest.param(
            FILE_PART + CONTENT + f"\r\n--{BOUNDARY}", id="delimiter-without-final-dashes"
        ),
        pytest.param(FILE_PART + CONTENT + f"\r\n--{BOUNDARY}-", id="one-final-dash"),
        pytest.param(FILE_PART + CONTENT + f"\r\n--{BOUNDARY}\r\n", id="next-part-never-comes"),
        pytest.param(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filen',
            id="ends-mid-headers",
        ),
        pytest.param(FILE_PART, id="ends-after-headers"),
        pytest.param("", id="empty"),
    ],
)
def test_a_body_cut_short_is_400_and_stores_nothing(server: Server, user: str, body: str) -> None:
    before = server.services.catalog.documents.count()
    status, answer = _post(server, user, body.encode())
    assert status == 400, answer
    assert answer["error"]["code"] == "bad_request"
    assert answer["error"]["message"]
    _nothing_stored(server, before)


def test_a_new_version_cut_short_is_400_and_keeps_the_current_one(
    server: Server, user: str
) -> None:
    doc = server.upload(user, b"version one", "v.txt", wait=False)
    status, answer = _post(
        server, user, (FILE_PART + CONTENT).encode(), f"/documents/{doc['id']}/content"
    )
    assert status == 400, answer
    assert answer["error"]["code"] == "bad_request"
    assert server.services.catalog.documents.get(doc["id"]).version == 1
    assert not list(server.services.settings.spool_dir.glob("upload-*"))


@pytest.mark.parametrize("epilogue", ["", "\r\n", "\r\nthe epilogue is ignored\r\n"])
def test_a_complete_body_is_accepted(server: Server, user: str, epilogue: str) -> None:
    body = FILE_PART + "complete" + f"\r\n--{BOUNDARY}--" + epilogue
    # The same bytes each time: a new document each time.
    status, answer = _post(server, user, body.encode(), "/documents?allow_duplicate=true")
    assert status == 202, answer
    assert answer["size"] == len(b"complete")
