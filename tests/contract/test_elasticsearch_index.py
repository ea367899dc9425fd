"""What only the Elasticsearch/OpenSearch adapter does: the alias over a versioned
index, the reindex when the shipped mapping changes, and the engine going away.
Live (a node at `CROSSDOC_TEST_ELASTICSEARCH_URL`); the contract suite covers the rest."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.errors import SearchUnavailableError
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.elasticsearch import (
    ElasticsearchIndex,
    _ElasticsearchClient,
    _EngineError,
    _OpenSearchClient,
    detect_engine,
    index_settings,
    schema_version,
)
from indexer.query import parse_user_query
from tests.conftest import drop_search_index, free_port
from tests.factories import index_doc as doc

URL = os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch"
)
GOV = AccessFilter(frozenset({"gov"}))


@pytest.fixture
def alias() -> Iterator[str]:
    name = f"crossdoc-test-{uuid.uuid4().hex}"
    yield name
    drop_search_index(URL, name)


def _rest(method: str, path: str, body: Any = None) -> Any:
    client = _OpenSearchClient(URL, 10)
    try:
        return client.request(method, path, body=body)
    finally:
        client.close()


def test_the_engine_is_detected_from_its_answer() -> None:
    assert detect_engine(URL) in {"opensearch", "elasticsearch"}


def test_reads_and_writes_go_through_an_alias_over_a_versioned_index(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    first = ElasticsearchIndex(URL, alias, korean_analyzer)
    # A new index: whatever the catalog holds must be indexed again.
    assert first.schema_rebuilt
    first.upsert([doc("a", "예산 보고")])
    first.close()
    assert list(_rest("GET", f"/_alias/{alias}")) == [f"{alias}-{schema_version()}"]
    again = ElasticsearchIndex(URL, alias, korean_analyzer)
    assert not again.schema_rebuilt  # the same schema: nothing to redo
    assert again.count() == 1
    again.close()


def test_a_new_mapping_gets_a_new_index_and_asks_for_a_reindex(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    old = f"{alias}-0ld0ld0ld0ld"
    _rest("PUT", f"/{old}", index_settings())
    _rest("POST", "/_aliases", {"actions": [{"add": {"index": old, "alias": alias}}]})
    _rest("PUT", f"/{old}/_doc/x?refresh=true", {"id": "x", "revision": 1, "title": "옛 문서"})
    index = ElasticsearchIndex(URL, alias, korean_analyzer)
    assert index.schema_rebuilt
    assert list(_rest("GET", f"/_alias/{alias}")) == [f"{alias}-{schema_version()}"]
    assert index.count() == 0  # the catalog queues everything again
    with pytest.raises(_EngineError) as gone:
        _rest("GET", f"/{old}")
    assert gone.value.status == 404  # the old index is dropped once the alias has moved
    index.close()


def test_an_engine_gone_during_search_is_search_unavailable(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    index = ElasticsearchIndex(URL, alias, korean_analyzer)
    index.upsert([doc("a", "예산 보고")])
    index._client = _OpenSearchClient(f"http://127.0.0.1:{free_port()}", 2)
    request = SearchRequest(query=parse_user_query("예산"))
    with pytest.raises(SearchUnavailableError, match="cannot be reached"):
        index.search(request, GOV)
    with pytest.raises(SearchUnavailableError):
        index.suggest(GOV, "예산", 5)
    with pytest.raises(SearchUnavailableError):
        index.ping()


def test_a_search_missing_a_shard_is_search_unavailable(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    # As when a node holding one of the shards is down or restarting: the engine
    # answers a search 200 from the shards it has, `_shards.successful` short of
    # `total` (the missing one not even counted as failed): a partial answer that
    # must not pass for a whole one. Here the alias also covers an index whose
    # one shard is bound to a node that does not exist (never assigned).
    index = ElasticsearchIndex(URL, alias, korean_analyzer)
    index.upsert([doc(f"d{n}", "예산 보고") for n in range(3)])
    request = SearchRequest(query=parse_user_query("예산"))
    assert index.search(request, GOV).total == 3
    missing = f"{alias}-unassigned"
    client = _OpenSearchClient(URL, 60)
    try:
        client.request(
            "PUT",
            f"/{missing}",
            body={"settings": {"index.routing.allocation.require._name": "no-such-node"}},
            params={"wait_for_active_shards": "0"},
        )
        client.request(
            "POST", "/_aliases", body={"actions": [{"add": {"index": missing, "alias": alias}}]}
        )
        with pytest.raises(SearchUnavailableError, match="1 of 2 shard"):
            index.search(request, GOV)
        with pytest.raises(SearchUnavailableError, match="shard"):
            index.suggest(GOV, "예산", 5)
        with pytest.raises(SearchUnavailableError, match="shard"):
            index.ping()
    finally:
        client.request("DELETE", f"/{missing}")
        client.close()
    assert index.search(request, GOV).total == 3  # whole again
    index.close()


def test_documents_of_a_red_index_are_unreadable_not_missing(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    # A node restarted before it has assigned the index's one shard: a search is
    # refused by the engine itself (503), but a `_mget` answers 200 with an error
    # per document, which must not read as "not in the index" (an access update
    # would then extract and index the document again, a rebuild copy it again).
    index = ElasticsearchIndex(URL, alias, korean_analyzer)
    index.upsert([doc("a", "예산 보고")])
    (concrete,) = _rest("GET", f"/_alias/{alias}")
    client = _OpenSearchClient(URL, 60)
    try:
        client.request("POST", f"/{concrete}/_close")
        client.request(
            "PUT",
            f"/{concrete}/_settings",
            body={"index.routing.allocation.require._name": "no-such-node"},
        )
        client.request("POST", f"/{concrete}/_open", params={"wait_for_active_shards": "0"})
        health = client.request("GET", f"/_cluster/health/{concrete}")
        assert health["status"] == "red", health
    finally:
        client.close()
    with pytest.raises(SearchUnavailableError):
        index.search(SearchRequest(query=parse_user_query("예산")), GOV)
    with pytest.raises(SearchUnavailableError, match="unreadable"):
        index.revisions(["a"])
    with pytest.raises(SearchUnavailableError, match="unreadable"):
        index.update_access([doc("a", readers=["x"], revision=2)])
    index.close()


def test_an_engine_not_there_at_start_is_search_unavailable(
    korean_analyzer: KoreanAnalyzer,
) -> None:
    with pytest.raises(SearchUnavailableError, match="cannot be reached"):
        ElasticsearchIndex(f"http://127.0.0.1:{free_port()}", "crossdoc-x", korean_analyzer)


def test_writes_never_create_an_index_in_place_of_the_alias(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    index = ElasticsearchIndex(URL, alias, korean_analyzer)
    drop_search_index(URL, alias)  # the alias and its index deleted under a running process
    with pytest.raises(SearchUnavailableError, match="refused"):
        index.upsert([doc("a", "예산 보고")])
    with pytest.raises(_EngineError) as missing:
        _rest("GET", f"/{alias}")
    assert missing.value.status == 404  # no index with a guessed mapping took its name
    index.close()


def test_the_elasticsearch_client_speaks_the_shared_api(
    alias: str, korean_analyzer: KoreanAnalyzer
) -> None:
    # No Elasticsearch here: the official client's path runs against this node, which
    # speaks the same REST API. Plain JSON media types (a 9.x client's own requests ask
    # for `compatible-with=9`, which Elasticsearch 8 refuses) and no product check.
    client = _ElasticsearchClient(URL, 10)
    index = ElasticsearchIndex(URL, alias, korean_analyzer, client=client)
    index.upsert(
        [doc("a", "잠수함 예산 보고", title="잠수함 보고"), doc("b", "예산", readers=["x"])]
    )
    results = index.search(SearchRequest(query=parse_user_query("잠수함")), GOV)
    assert [h.id for h in results.hits] == ["a"]
    assert "<mark>" in results.hits[0].highlights[0]
    assert [s.text for s in index.suggest(GOV, "잠수", 5)][:1] == ["잠수함 보고"]
    assert index.update_access([doc("a", readers=["x"], revision=2)]) == []
    assert index.search(SearchRequest(query=parse_user_query("잠수함")), GOV).total == 0
    assert index.revisions(["a", "b", "c"]) == {"a": 2, "b": 1}
    with pytest.raises(_EngineError) as missing:
        client.request("GET", f"/{alias}-no-such-index")
    assert missing.value.status == 404
    index.close()
    gone = _ElasticsearchClient(f"http://127.0.0.1:{free_port()}", 2)
    with pytest.raises(SearchUnavailableError, match="cannot be reached"):
        gone.request("GET", "/")
