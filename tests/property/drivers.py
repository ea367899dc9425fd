"""Two ways to run the real Crossdoc stack under the property test.

* `InProcessStack`: the FastAPI app from `create_app(settings, services)`,
  called through httpx's ASGI transport on an event loop of our own (no TCP,
  no server thread), with the outbox drained by the test itself through the
  worker's own `drain_once`, so a search can be placed exactly before or after
  the index catches up with a change. This is the fast leg, for the bulk of the
  checks.
* `ServerStack`: a real uvicorn server from `tests.conftest.start_server`, with
  its in-process worker indexing in the background, over real HTTP. Searches
  then race the worker, as they do in production.

Both keep their data in a fresh directory per example (on /dev/shm when there
is one: the catalog and object store fsync every commit, which a disk makes
slow and which this test does not need to prove).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Generator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx

from auth.errors import InvalidTokenError
from crossdoc.settings import Settings
from crossdoc.wiring.api import Services, build_services
from indexer.extraction.base import Extraction, TextExtractor
from indexer.worker import drain_once
from search_api.app import create_app
from search_api.deps import current_principal
from search_api.routers.search import search as search_route
from search_api.routers.search import suggest as suggest_route
from tests.conftest import (
    ADMIN_PASSWORD,
    PASSWORD,
    Server,
    drop_search_index,
    fast_passwords,
    start_server,
)

API = "/api/v1"


def scratch_dir() -> Path:
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="crossdoc-proof-", dir=shm if shm.is_dir() else None))


class SharedExtractor:
    """The session's real extractor, lent to one stack: closing the stack leaves it open.

    Starting the native Tika child takes about a second; every example would
    otherwise pay it again for its first HTML document.
    """

    def __init__(self, inner: TextExtractor) -> None:
        self.inner = inner
        self.version = inner.version

    def extract(self, path: Path, *, filename: str = "", declared_type: str = "") -> Extraction:
        return self.inner.extract(path, filename=filename, declared_type=declared_type)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        pass  # the owner of `inner` closes it


class ManualDispatcher:
    """No background worker: the test drains the outbox itself, when it chooses."""

    def start(self) -> None:
        pass

    def notify(self, document_ids: Sequence[str]) -> None:
        del document_ids

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


class Stack:
    """What the state machine needs of a running Crossdoc."""

    services: Services
    #: Whether the test decides when the index catches up (else a worker races it).
    manual_indexing: bool

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def request(
        self, method: str, path: str, user: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        raise NotImplementedError

    def sign_in(self, user: str) -> None:
        password = ADMIN_PASSWORD if user == "admin" else PASSWORD
        r = self.request("POST", "/auth/token", data={"username": user, "password": password})
        assert r.status_code == 200, r.text
        self.tokens[user] = r.json()["access_token"]

    def headers(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def search(self, user: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """`GET /search` as `user`: (status, body)."""
        r = self.request("GET", "/search", user, params=params)
        return r.status_code, r.json()

    def search_direct(self, user: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The same search, as cheaply as this stack can run it."""
        return self.search(user, params)

    def suggest(self, user: str, q: str) -> tuple[int, dict[str, Any]]:
        """`GET /suggest` as `user`: (status, body)."""
        r = self.request("GET", "/suggest", user, params={"q": q, "limit": 20})
        return r.status_code, r.json()

    def drain(self, batch: int | None) -> None:
        """Index one batch of `batch` outbox rows, or everything due when None."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class InProcessStack(Stack):
    manual_indexing = True

    def __init__(self, extractor: TextExtractor, search_url: str | None = None) -> None:
        """The app on the embedded index, or on Elasticsearch/OpenSearch at
        `search_url` (a fresh, uniquely named index, dropped on close)."""
        super().__init__()
        self.data_dir = scratch_dir()
        remote = (
            {"search_url": search_url, "search_index": f"crossdoc-test-{uuid.uuid4().hex}"}
            if search_url
            else {}
        )
        # Thousands of searches from one address in seconds: throttling is tested elsewhere.
        settings = Settings(
            data_dir=self.data_dir,
            admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
            demo=False,
            rate_limits=False,
            **remote,  # type: ignore[arg-type]
        )
        services = build_services(settings, passwords=fast_passwords())
        services.extractor.close()
        shared = SharedExtractor(extractor)
        services.extractor = shared
        services.pipeline.extractor = shared
        services.dispatcher = ManualDispatcher()
        self.services = services
        self.app = create_app(settings, services)
        self.loop = asyncio.new_event_loop()
        self.lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(self.app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("10.0.0.1", 5000)),
            base_url="http://crossdoc.test" + API,
        )

    def request(
        self, method: str, path: str, user: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.loop.run_until_complete(
            self.client.request(method, path, headers=self.headers(user), **kwargs)
        )

    def search_direct(self, user: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The search route function called as FastAPI would call it, minus HTTP:
        the caller resolved from their token and the live catalog, the route's own
        code, its response model. About twice as fast as a request through ASGI."""
        try:
            principal = current_principal(self.services, self.tokens[user])
        except InvalidTokenError:
            return 401, {}
        out = search_route(
            _rate=None,
            services=self.services,
            principal=principal,
            auditor=self.app.state.auditor,
            address="10.0.0.1",
            q=params.get("q", ""),
            department=params.get("department"),
            ministry=params.get("ministry"),
            content_type=params.get("content_type"),
            tag=params.get("tag"),
            from_=params.get("from"),
            to=params.get("to"),
            sort=params.get("sort", "relevance"),
            page=params.get("page", 1),
            size=params.get("size", 20),
        )
        return 200, out.model_dump(mode="json")

    def suggest(self, user: str, q: str) -> tuple[int, dict[str, Any]]:
        """The suggest route function called directly, as `search_direct` does."""
        try:
            principal = current_principal(self.services, self.tokens[user])
        except InvalidTokenError:
            return 401, {}
        out = suggest_route(
            _rate=None,
            services=self.services,
            principal=principal,
            auditor=self.app.state.auditor,
            address="10.0.0.1",
            q=q,
            limit=20,
        )
        return 200, out.model_dump(mode="json")

    def drain(self, batch: int | None) -> None:
        catalog, pipeline = self.services.catalog, self.services.pipeline
        if batch is not None:
            drain_once(catalog, pipeline, batch)
            return
        while drain_once(catalog, pipeline, 64):
            pass

    def close(self) -> None:
        drop = getattr(self.services.index, "drop", None)
        if drop is not None:  # a test index on Elasticsearch/OpenSearch
            drop()
        try:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.close()
            shutil.rmtree(self.data_dir, ignore_errors=True)


class ServerStack(Stack):
    manual_indexing = False

    def __init__(self, search_url: str | None = None) -> None:
        """A real server on the embedded index, or on Elasticsearch/OpenSearch at
        `search_url` (a fresh, uniquely named index, dropped on close)."""
        super().__init__()
        self.data_dir = scratch_dir()
        self.remote = (search_url, f"crossdoc-test-{uuid.uuid4().hex}") if search_url else None
        extra = (
            {"search_url": self.remote[0], "search_index": self.remote[1]} if self.remote else {}
        )
        running = start_server(self.data_dir, rate_limits=False, **extra)
        self._running: Generator[Server, None, None] = running  # type: ignore[assignment]
        self.server = next(self._running)
        self.services = self.server.services
        self.client = httpx.Client(base_url=self.server.base_url + API, timeout=60)

    def request(
        self, method: str, path: str, user: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.request(method, path, headers=self.headers(user), **kwargs)

    def drain(self, batch: int | None) -> None:
        """The server's worker indexes by itself; `None` waits until it has caught up."""
        if batch is not None:
            return
        deadline = time.monotonic() + 60
        while self.services.catalog.outbox.backlog():
            if time.monotonic() > deadline:
                raise AssertionError("the server's worker did not catch up in 60 s")
            time.sleep(0.02)

    def close(self) -> None:
        try:
            self.client.close()
            self._running.close()
            if self.remote is not None:
                drop_search_index(*self.remote)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
