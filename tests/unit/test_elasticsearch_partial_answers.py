"""The engine's answers while an index's shard is not assigned (a node down or
restarting, a red index), as OpenSearch 2.19 gives them (recorded from the node),
taken by the adapter as unavailable, never as a whole answer or "nothing there"
(no engine needed: the live checks are tests/contract/test_elasticsearch_index.py
and tests/api/test_engine_stops.py)."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.errors import SearchUnavailableError
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.elasticsearch import ElasticsearchIndex
from indexer.query import parse_user_query
from tests.factories import index_doc

_ANALYZER = KoreanAnalyzer()
GOV = AccessFilter(frozenset({"gov"}))

#: A two-shard index, one shard with no started copy: 200, that shard neither
#: successful nor failed, and only the other shard's documents.
PARTIAL_SHARDS = {"total": 2, "successful": 1, "skipped": 0, "failed": 0}
PARTIAL_SEARCH = {
    "took": 214,
    "timed_out": False,
    "_shards": PARTIAL_SHARDS,
    "hits": {"total": {"value": 2, "relation": "eq"}, "max_score": None, "hits": []},
}
RED_MGET = {
    "docs": [
        {
            "_index": "idx",
            "_id": "a",
            "error": {
                "type": "no_shard_available_action_exception",
                "reason": "No shard available for [get [idx][a]: routing [null]]",
            },
        }
    ]
}


class _Engine:
    """Answers by path, as a node would (the alias exists already)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        if path.startswith("/_alias/"):
            from indexer.index.elasticsearch import schema_version

            return {f"idx-{schema_version()}": {"aliases": {"idx": {}}}}
        for suffix, answer in self.answers.items():
            if path.endswith(suffix):
                return answer
        return {}

    def close(self) -> None:
        pass


def _index(answers: dict[str, Any]) -> ElasticsearchIndex:
    return ElasticsearchIndex("http://unused", "idx", _ANALYZER, client=_Engine(answers))


def test_a_search_missing_a_shard_is_unavailable_not_partial() -> None:
    index = _index({"/_search": PARTIAL_SEARCH, "/_count": {"count": 2, "_shards": PARTIAL_SHARDS}})
    with pytest.raises(SearchUnavailableError, match="1 of 2 shard"):
        index.search(SearchRequest(query=parse_user_query("예산")), GOV)
    with pytest.raises(SearchUnavailableError):
        index.suggest(GOV, "예산", 5)
    with pytest.raises(SearchUnavailableError):
        index.count()
    with pytest.raises(SearchUnavailableError):
        index.ping()


def test_documents_unreadable_for_a_shard_are_unavailable_not_missing() -> None:
    index = _index({"/_mget": RED_MGET})
    with pytest.raises(SearchUnavailableError, match="unreadable"):
        index.revisions(["a"])
    # Not "not in the index": that would index the document again from scratch.
    with pytest.raises(SearchUnavailableError, match="unreadable"):
        index.update_access([index_doc("a", readers=["x"], revision=2)])


def test_whole_answers_pass_and_a_missing_replica_is_no_failure() -> None:
    whole = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    found = dict(PARTIAL_SEARCH, _shards=whole)
    index = _index(
        {
            "/_search": found,
            "/_count": {"count": 3, "_shards": whole},
            "/_mget": {"docs": [{"_id": "a", "found": False}]},
            # A refresh counts every copy: one node never holds the replica.
            "/_refresh": {"_shards": {"total": 2, "successful": 1, "failed": 0}},
        }
    )
    assert index.search(SearchRequest(query=parse_user_query("예산")), GOV).total == 2
    assert index.count() == 3
    assert index.revisions(["a"]) == {}
    index.refresh()
    failed = _index({"/_refresh": {"_shards": {"total": 2, "successful": 0, "failed": 1}}})
    with pytest.raises(SearchUnavailableError):
        failed.refresh()
