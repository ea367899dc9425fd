"""Shared fixtures: a real Crossdoc server over HTTP on the embedded default."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from auth.passwords import Passwords
from crossdoc.settings import Settings
from crossdoc.wiring.api import Services, build_services
from search_api.app import create_app
from search_api.server import uvicorn_options

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "password-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_passwords() -> Passwords:
    # Tests sign in hundreds of times; production cost is the default.
    return Passwords(time_cost=1, memory_cost=8 * 1024)


@dataclass
class Server:
    """A running Crossdoc server and an HTTP client helper bound to it."""

    base_url: str
    services: Services
    tokens: dict[str, str] = field(default_factory=dict)
    #: On the full stack leg (tests/api/full_stack.py): its `crossdoc worker` process,
    #: and the engine settings (environment) a worker of the test's own needs.
    worker: Any = None
    engine_env: dict[str, str] = field(default_factory=dict)

    def client(self, username: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {}
        if username is not None:
            headers["Authorization"] = f"Bearer {self.token(username)}"
        return httpx.Client(
            base_url=self.base_url + "/api/v1", headers=headers, timeout=60, **kwargs
        )

    def token(self, username: str, password: str | None = None) -> str:
        if username not in self.tokens:
            pw = password or (ADMIN_PASSWORD if username == "admin" else PASSWORD)
            r = httpx.post(
                f"{self.base_url}/api/v1/auth/token",
                data={"username": username, "password": pw},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return self.tokens[username]

    # -- factories -------------------------------------------------------------------

    def ensure_org(self, ministry: str, department: str) -> None:
        with self.client("admin") as c:
            r = c.post("/admin/ministries", json={"code": ministry, "name": ministry})
            assert r.status_code in (201, 409), r.text
            r = c.post(
                "/admin/departments",
                json={"code": department, "name": department, "ministry": ministry},
            )
            assert r.status_code in (201, 409), r.text

    def user(
        self,
        username: str,
        department: str | None,
        roles: list[str] | None = None,
        ministry: str | None = None,
    ) -> str:
        if department is not None:
            self.ensure_org(ministry or department.split("-")[0], department)
        with self.client("admin") as c:
            r = c.post(
                "/admin/users",
                json={
                    "username": username,
                    "password": PASSWORD,
                    "display_name": username,
                    "department": department,
                    "roles": roles or ["member"],
                },
            )
            assert r.status_code in (201, 409), r.text
        return username

    def upload(
        self,
        username: str,
        content: bytes,
        filename: str = "doc.txt",
        *,
        title: str | None = None,
        visibility: str | None = None,
        tags: str | None = None,
        grants: list[dict[str, Any]] | None = None,
        wait: bool = True,
        allow_duplicate: bool = True,
    ) -> dict[str, Any]:
        """Upload as `username` (202 expected). `allow_duplicate`: a new document even
        when the department holds the same bytes (tests reuse contents freely)."""
        data = {
            k: v
            for k, v in {"title": title, "visibility": visibility, "tags": tags}.items()
            if v is not None
        }
        with self.client(username) as c:
            params = {"allow_duplicate": "true"} if allow_duplicate else {}
            r = c.post("/documents", files={"file": (filename, content)}, data=data, params=params)
            assert r.status_code == 202, r.text
            doc: dict[str, Any] = r.json()
            if grants is not None:
                r = c.put(
                    f"/documents/{doc['id']}/acl",
                    json={"visibility": visibility or "department", "grants": grants},
                )
                assert r.status_code == 200, r.text
        if wait:
            doc = self.wait_indexed(username, doc["id"])
        return doc

    def wait_indexed(self, username: str, doc_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client(username) as c:
            while True:
                doc: dict[str, Any] = c.get(f"/documents/{doc_id}").json()
                stale = self.services.catalog.documents.stale_access_ids()
                if doc.get("status") != "pending" and doc_id not in stale:
                    backlog = [i for i in self.services.catalog.outbox.due_ids()]
                    if not backlog:
                        return doc
                if time.monotonic() > deadline:
                    raise AssertionError(f"document {doc_id} not indexed in {timeout}s: {doc}")
                time.sleep(0.05)

    def search(self, username: str, **params: Any) -> dict[str, Any]:
        with self.client(username) as c:
            r = c.get("/search", params=params)
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            return result


#: While an API test module runs on the full scale-out stack (`stack` = "full", see
#: tests/api/conftest.py), the `FullStack` that starts its servers.
FULL_STACK: list[Any] = []


def start_server(tmp_path: Path, **overrides: Any) -> Iterator[Server]:
    """A server on `tmp_path / "data"`: on the embedded engines, or on the full stack
    while a module runs on it (then with its own `crossdoc worker` process)."""
    if FULL_STACK:
        from tests.api.full_stack import ENGINE_SETTINGS, stack_servers

        # A broker of the test's own is fine (it runs its own workers: see stack_servers).
        chosen = ENGINE_SETTINGS & overrides.keys() - {"broker_url"}
        if chosen:
            raise RuntimeError(
                f"this test chooses its engines ({sorted(chosen)}): mark its module "
                "`pytest.mark.embedded_only(reason)`"
            )
        yield from stack_servers(FULL_STACK[-1], tmp_path / "data", overrides)
        return
    yield from start_embedded_server(tmp_path / "data", **overrides)


def start_embedded_server(data_dir: Path, **overrides: Any) -> Generator[Server, None, None]:
    """A server on `data_dir` with exactly these settings (engines included)."""
    settings = Settings(
        data_dir=data_dir,
        **{"admin_password": ADMIN_PASSWORD, "demo": False, **overrides},
    )
    services = build_services(settings, passwords=fast_passwords())
    app = create_app(settings, services)
    port = free_port()
    options = uvicorn_options("127.0.0.1", port) | {"log_level": "warning"}
    config = uvicorn.Config(app, lifespan="on", **options)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(30)


def drop_search_index(url: str, alias: str) -> None:
    """Delete a test index on Elasticsearch/OpenSearch: the concrete indices behind
    `alias` (by name: Elasticsearch 8 refuses wildcard deletes)."""
    from indexer.index.elasticsearch import _connect, _EngineError

    client = _connect(url, 10)
    try:
        try:
            names = list(client.request("GET", f"/_alias/{alias}"))
        except _EngineError:
            return  # no alias: nothing was created
        for name in names:
            client.request("DELETE", f"/{name}")
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module (fresh data dir), small upload limit for the 413 tests."""
    yield from start_server(tmp_path_factory.mktemp("crossdoc"), max_upload_bytes=8 * 1024 * 1024)
