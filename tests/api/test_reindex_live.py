"""`crossdoc reindex` while the server runs (issue 10 d3, issue 14 item 11): a new
index is built beside the live one and swapped in; searches never fail or miss a
document meanwhile, and changes made during the rebuild are in the new index.

On each engine: embedded (Tantivy generations) and, with
`CROSSDOC_TEST_ELASTICSEARCH_URL`, Elasticsearch/OpenSearch (alias swap).
About 15 s on the embedded index, 40 s on OpenSearch (2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.index.tantivy_index import CURRENT_FILE
from indexer.rebuild import RebuildableIndex, catch_up, rebuild_index
from tests.conftest import Server, drop_search_index, start_server

pytestmark = pytest.mark.embedded_only(
    "it runs its own legs, embedded and OpenSearch (the `server` fixture's params), each choosing"
    " its engines: the reindex on the scale-out search engine is its OpenSearch leg"
)

URL = os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL", "")
WORD = "재색인무중단"
#: Documents indexed before the rebuild (the rebuild writes them in batches of 4).
BEFORE = 12


@pytest.fixture(params=["embedded", "elasticsearch"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    overrides: dict[str, Any] = {}
    if request.param == "elasticsearch":
        if not URL:
            pytest.skip(
                "set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch"
            )
        overrides = {"search_url": URL, "search_index": f"crossdoc-test-{uuid.uuid4().hex}"}
    # The loop searches as fast as it can: no per-user search rate here.
    running = start_server(tmp_path, rate_limits=False, **overrides)
    try:
        yield next(running)
    finally:
        running.close()
        if overrides:
            drop_search_index(URL, f"{overrides['search_index']}-rebuild")
            drop_search_index(URL, overrides["search_index"])


class SearchLoop:
    """Searches in a loop on a thread, as a user would, noting every failure and
    every search that misses a document it must find."""

    def __init__(self, server: Server, username: str, expected: set[str]) -> None:
        self.server = server
        self.username = username
        self.expected = set(expected)
        self.problems: list[str] = []
        self.searches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SearchLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def forget(self, doc_id: str) -> None:
        """A document the test is about to hide or delete: no longer required."""
        self.expected.discard(doc_id)

    def _run(self) -> None:
        with self.server.client(self.username) as c:
            while not self._stop.is_set():
                wanted = set(self.expected)
                try:
                    r = c.get("/search", params={"q": WORD, "limit": 100})
                except httpx.HTTPError as err:
                    self.problems.append(f"search failed: {err}")
                    continue
                self.searches += 1
                if r.status_code != 200:
                    self.problems.append(f"search answered {r.status_code}: {r.text[:200]}")
                    continue
                found = {h["id"] for h in r.json()["hits"]}
                # Those forgotten while the search ran may be hidden already.
                if missing := (wanted & self.expected) - found:
                    self.problems.append(f"search missed {sorted(missing)}")


def _fill(server: Server) -> tuple[str, str, list[str]]:
    kim = server.user("kim", "MOIS-DX")
    lee = server.user("lee", "MOIS-DX")
    docs = [
        server.upload(kim, f"{WORD} 문서 {i}번 예산 보고".encode(), f"d{i}.txt", wait=False)["id"]
        for i in range(BEFORE)
    ]
    for doc_id in docs:
        server.wait_indexed(kim, doc_id)
    return kim, lee, docs


def test_a_rebuild_under_load_swaps_in_with_every_change_made_meanwhile(server: Server) -> None:
    """The server's own rebuild (what `crossdoc reindex` asks of it on the embedded
    index): uploads, an access change and a deletion made while it runs reach the
    new index; a search looping meanwhile never fails and never misses a document."""
    kim, lee, docs = _fill(server)
    index = server.services.index
    assert isinstance(index, RebuildableIndex)
    changed: dict[str, str] = {}

    with SearchLoop(server, lee, set(docs)) as loop:

        def meanwhile(done: int, total: int) -> None:
            if changed or done >= total:
                return
            # Mid-way through the full pass: some documents are in the new index, others not.
            changed["new"] = server.upload(
                kim, f"{WORD} 재색인 중에 올린 문서".encode(), "new.txt"
            )["id"]
            for key, doc_id in (("hidden_early", docs[0]), ("hidden_late", docs[-2])):
                loop.forget(doc_id)
                with server.client(kim) as c:
                    r = c.put(
                        f"/documents/{doc_id}/acl", json={"visibility": "private", "grants": []}
                    )
                    assert r.status_code == 200, r.text
                changed[key] = doc_id
                server.wait_indexed(kim, doc_id)
            loop.forget(docs[-1])
            with server.client(kim) as c:
                assert c.delete(f"/documents/{docs[-1]}").status_code in (200, 204)
            changed["deleted"] = docs[-1]
            server.wait_indexed(kim, changed["new"])

        swap = index.finish_rebuild

        def at_the_swap() -> None:
            # After the catch-up pass, before the swap: only the double writes
            # can bring these to the new index.
            changed["last"] = server.upload(kim, f"{WORD} 교체 직전 문서".encode(), "last.txt")[
                "id"
            ]
            loop.forget(docs[1])
            with server.client(kim) as c:
                r = c.put(f"/documents/{docs[1]}/acl", json={"visibility": "private", "grants": []})
                assert r.status_code == 200, r.text
            server.wait_indexed(kim, docs[1])
            swap()

        index.finish_rebuild = at_the_swap  # type: ignore[method-assign]
        try:
            report = rebuild_index(
                server.services.catalog,
                server.services.pipeline,
                index,
                progress=meanwhile,
                batch=4,
            )
        finally:
            del index.finish_rebuild
        after = server.search(lee, q=WORD, limit=100)
        assert loop.searches > 0

    assert changed, "the rebuild ended before the changes were made"
    assert loop.problems == []
    assert report.indexed >= BEFORE - 1
    found = {h["id"] for h in after["hits"]}
    assert changed["new"] in found  # uploaded during the rebuild
    assert changed["hidden_early"] not in found and changed["hidden_late"] not in found
    assert changed["deleted"] not in found
    assert changed["last"] in found and docs[1] not in found  # made just before the swap
    assert found == (set(docs) - {docs[0], docs[1], docs[-2], docs[-1]}) | {
        changed["new"],
        changed["last"],
    }
    assert index.count() == BEFORE + 1  # the deleted one is gone, the new ones are in
    # The owner still finds the documents made private.
    mine = {h["id"] for h in server.search(kim, q=WORD, limit=100)["hits"]}
    assert {changed["hidden_early"], changed["hidden_late"], changed["new"]} <= mine


def test_crossdoc_reindex_while_the_server_runs(server: Server, tmp_path: Path) -> None:
    """The command itself, against the running server: it rebuilds on the server
    (embedded index, whose writer the server holds) or beside it (OpenSearch)."""
    kim, lee, docs = _fill(server)
    settings = server.services.settings
    env = dict(os.environ, CROSSDOC_DATA_DIR=str(settings.data_dir), CROSSDOC_DEMO="false")
    if settings.search_url != "embedded":
        env |= {
            "CROSSDOC_SEARCH_URL": settings.search_url,
            "CROSSDOC_SEARCH_INDEX": settings.search_index,
        }
    with SearchLoop(server, lee, set(docs)) as loop:
        command = subprocess.Popen(
            [sys.executable, "-m", "crossdoc", "reindex"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        uploaded = server.upload(kim, f"{WORD} 명령 실행 중 올린 문서".encode(), "during.txt")
        _out, err = command.communicate(timeout=240)
    assert command.returncode == 0, err
    assert f"index holds {BEFORE + 1} documents" in err or f"index holds {BEFORE} documents" in err
    assert loop.problems == []
    assert loop.searches > 0
    found = {h["id"] for h in server.search(lee, q=WORD, limit=100)["hits"]}
    assert found == set(docs) | {uploaded["id"]}
    if settings.search_url == "embedded":
        # The server swapped a new generation in.
        assert (settings.index_dir / CURRENT_FILE).exists()
        assert "asking it to rebuild" in err


def test_the_catch_up_pass_rewrites_every_entry_that_differs_from_the_catalog(
    server: Server,
) -> None:
    """What the full pass can leave behind (a change whose double write came before
    the pass wrote that document): a missing entry, an entry of a deleted document."""
    kim, _, docs = _fill(server)
    index = server.services.index
    pipeline = server.services.pipeline
    catalog = server.services.catalog
    assert isinstance(index, RebuildableIndex)
    target = index.begin_rebuild()
    try:
        # docs[0] not written (the pass has not reached it, say).
        assert pipeline.index_into(target, docs[1:]) == BEFORE - 1
        with server.client(kim) as c:
            assert c.delete(f"/documents/{docs[1]}").status_code == 204
        server.wait_indexed(kim, docs[0])
        stale = catalog.documents.get_many([docs[1]], include_deleted=True)[0]
        # The deleted document's entry written back (as an overtaken pass would).
        target.upsert([pipeline.index_document(stale, None, [], stale.updated_at)])
        target.refresh()
        assert docs[1] in target.revisions([docs[1]])
        assert catch_up(catalog, pipeline, target, batch=5) == 2
        held = target.revisions(docs)
        assert docs[1] not in held
        live = catalog.documents.get_many(docs)
        assert held == {d.id: d.revision for d in live}
    finally:
        index.abort_rebuild()
