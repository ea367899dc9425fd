"""Rate limits over HTTP: 429 with Retry-After per user and per address, audited.

The server listens on 127.0.0.1; clients connect from other loopback addresses
(127.0.0.0/8 is all local on Linux) to act as different machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from storage.catalog.records import AuditFilter
from tests.conftest import PASSWORD, Server, start_server


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    del stack  # a dependency only: started again for each stack (tests/api/conftest.py)
    yield from start_server(
        tmp_path_factory.mktemp("throttle"),
        rate_search_per_user=3,
        rate_search_per_address=5,
        rate_download_per_user=3,
        rate_download_per_address=5,
        rate_sign_in_per_address=5,
        rate_sign_in_failures_per_user=3,
    )


def client(server: Server, address: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers=headers,
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30,
    )


def sign_in(server: Server, address: str, username: str, password: str) -> httpx.Response:
    with client(server, address) as c:
        return c.post("/auth/token", data={"username": username, "password": password})


def token(server: Server, address: str, username: str) -> str:
    r = sign_in(server, address, username, PASSWORD)
    assert r.status_code == 200, r.text
    value: str = r.json()["access_token"]
    return value


def audit(
    server: Server, match: Callable[[Any], bool] = lambda e: True, **filters: Any
) -> list[Any]:
    deadline = time.monotonic() + 10
    while True:  # throttling events are written in batches
        found = [
            e
            for e in server.services.catalog.audit.page(AuditFilter(**filters), limit=1000)
            if match(e)
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def assert_throttled(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_requests"
    retry_after = int(r.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


@pytest.fixture(scope="module")
def people(server: Server) -> dict[str, str]:
    for name in ("xavier", "yuri", "zoe", "victim", "other", "sue"):
        server.user(name, "MOIS-A")
    return {
        "xavier": token(server, "127.0.0.2", "xavier"),
        "yuri": token(server, "127.0.0.2", "yuri"),
        "zoe": token(server, "127.0.0.3", "zoe"),
        "sue": token(server, "127.0.0.3", "sue"),
    }


def test_suggestions_share_the_search_limit(server: Server, people: dict[str, str]) -> None:
    with client(server, "127.0.0.30", people["sue"]) as c:
        assert c.get("/suggest", params={"q": "예"}).status_code == 200
        assert c.get("/search", params={"q": "예산"}).status_code == 200
        assert c.get("/suggest", params={"q": "예사"}).status_code == 200
        assert_throttled(c.get("/suggest", params={"q": "예산"}))
        assert_throttled(c.get("/search", params={"q": "예산"}))
    [event] = audit(server, action="throttled", actor="sue")[:1]
    assert event.detail["limit"] == "search" and event.detail["key"] == "user"
    assert event.detail["path"] == "/api/v1/suggest"
    assert event.address == "127.0.0.30"


def test_searches_per_user_then_per_address(server: Server, people: dict[str, str]) -> None:
    with client(server, "127.0.0.10", people["xavier"]) as c:
        for _ in range(3):
            assert c.get("/search", params={"q": "예산"}).status_code == 200
        retry_after = assert_throttled(c.get("/search", params={"q": "예산"}))
        assert 10 <= retry_after <= 20  # 3 a minute: one every 20 s
    # Yuri has her own bucket but shares the address, which has 2 of 5 left.
    with client(server, "127.0.0.10", people["yuri"]) as c:
        assert c.get("/search").status_code == 200
        assert c.get("/search").status_code == 200
        assert_throttled(c.get("/search"))
    with client(server, "127.0.0.11", people["yuri"]) as c:  # another machine
        assert c.get("/search").status_code == 200
    events = audit(server, action="throttled", actor="xavier")
    assert events[0].outcome == "denied"
    assert events[0].detail["limit"] == "search" and events[0].detail["key"] == "user"
    assert events[0].address == "127.0.0.10"
    by_address = audit(server, action="throttled", actor="yuri")
    assert by_address[0].detail["key"] == "address"


def test_downloads_per_user(server: Server, people: dict[str, str]) -> None:
    doc = server.upload("zoe", "내려받을 문서".encode(), "d.txt", wait=False)
    with client(server, "127.0.0.20", people["zoe"]) as c:
        for _ in range(3):
            assert c.get(f"/documents/{doc['id']}/content").status_code == 200
        assert_throttled(c.get(f"/documents/{doc['id']}/content"))
        assert_throttled(c.get(f"/documents/{doc['id']}/versions/1/content"))
        assert c.get(f"/documents/{doc['id']}").status_code == 200  # metadata is not limited
    events = audit(server, action="throttled", actor="zoe")
    assert {e.detail["limit"] for e in events} == {"download"}
    downloads = audit(server, action="download", actor="zoe")
    assert len(downloads) == 3  # the bulk download is visible in the log


def test_sign_ins_per_address(server: Server, people: dict[str, str]) -> None:
    for _ in range(5):
        assert sign_in(server, "127.0.0.30", "other", PASSWORD).status_code == 200
    assert_throttled(sign_in(server, "127.0.0.30", "other", PASSWORD))
    assert sign_in(server, "127.0.0.31", "other", PASSWORD).status_code == 200
    events = audit(server, action="throttled", actor="other")
    assert events[0].detail["limit"] == "sign_in" and events[0].address == "127.0.0.30"


def test_failed_sign_ins_for_one_user_from_many_addresses(
    server: Server, people: dict[str, str]
) -> None:
    for i in range(3):
        r = sign_in(server, f"127.0.1.{i + 1}", "victim", "guess-number-{i}")
        assert r.status_code == 401
    # The fourth address, even with the right password: the username is throttled.
    retry_after = assert_throttled(sign_in(server, "127.0.1.9", "victim", PASSWORD))
    assert retry_after > 60  # 3 per 15 minutes
    events = audit(
        server, lambda e: e.detail.get("reason") == "throttled", action="sign_in", actor="victim"
    )
    assert events and events[0].outcome == "denied" and events[0].address == "127.0.1.9"
    # Other users are not affected.
    assert sign_in(server, "127.0.1.10", "other", PASSWORD).status_code == 200
