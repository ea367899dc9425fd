"""The Elasticsearch adapter's request bodies, checked against `AccessFilter`'s documented shape
(no engine needed: the live leg is tests/contract with CROSSDOC_TEST_ELASTICSEARCH_URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import AccessFilter, SearchRequest, SortOrder
from indexer.index.elasticsearch import (
    ElasticsearchIndex,
    access_filter,
    completion_body,
    search_body,
    text_query,
)
from indexer.query import parse_user_query
from storage.catalog.policy_match import PolicyMatch

_ANALYZER = KoreanAnalyzer()


def test_access_filter_has_the_documented_shape() -> None:
    access = AccessFilter(
        frozenset({"user:kim", "gov"}),
        pending=(PolicyMatch(ministry="행안부", visibility="internal"), PolicyMatch()),
        stale_ids=frozenset({"s1", "s2"}),
        readable_stale_ids=frozenset({"s2"}),
    )
    assert access_filter(access) == {
        "bool": {
            "should": [
                {
                    "bool": {
                        "should": [
                            {"terms": {"readers": ["gov", "user:kim"]}},
                            {
                                "bool": {
                                    "filter": [
                                        {"term": {"ministry": "행안부"}},
                                        {"term": {"readers": "visibility:internal"}},
                                    ]
                                }
                            },
                            # the empty match lets nothing through: no clause at all
                        ],
                        "minimum_should_match": 1,
                        "must_not": [{"terms": {"id": ["s1", "s2"]}}],
                    }
                },
                {"terms": {"id": ["s2"]}},
            ],
            "minimum_should_match": 1,
        }
    }


def test_search_body_scores_only_the_text_and_filters_the_rest() -> None:
    request = SearchRequest(
        query=parse_user_query('예산 "국정 과제" -비밀'),
        department="d",
        tag="t",
        created_from=datetime(2024, 1, 1, tzinfo=UTC),
        created_to=datetime(2024, 2, 1, tzinfo=UTC),
        sort=SortOrder.NEWEST,
        offset=20,
        limit=10,
    )
    body = search_body(request, AccessFilter(frozenset({"gov"})))
    query = body["query"]["bool"]
    assert len(query["must"]) == 1
    filters = query["filter"]
    assert {"term": {"department": "d"}} in filters and {"term": {"tag": "t"}} in filters
    assert {
        "range": {"created_at": {"gte": "2024-01-01T00:00:00Z", "lt": "2024-02-01T00:00:00Z"}}
    } in filters
    assert filters[-1] == access_filter(AccessFilter(frozenset({"gov"})))
    # The user's words are only ever analysed match values, never in a filter.
    assert "예산" not in json.dumps(filters, ensure_ascii=False)
    assert body["from"] == 20 and body["size"] == 10 and body["track_total_hits"] is True
    assert body["sort"][0] == {"created_at": "desc"}
    assert set(body["aggs"]) == {"department", "ministry", "content_type"}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_query_syntax_is_only_a_match_value() -> None:
    body = text_query(parse_user_query('readers:gov OR *:* -id:x {"query": {"match_all": {}}}'))
    engine_syntax = {"query_string", "simple_query_string", "match_all", "wildcard", "regexp"}
    assert not _keys(body) & (engine_syntax | {"term", "terms", "prefix"})
    # The words went in whole, together, as the analysed value of a match on the text fields.
    match = body["bool"]["must"][0]["bool"]["must"][0]["match"]["text"]
    assert match["query"].startswith("readers:gov OR *:* ")


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        self.calls.append((method, path))
        return {}

    def close(self) -> None:
        pass


def test_a_caller_without_tokens_gets_nothing_without_asking_the_engine() -> None:
    client = _Recorder()
    index = ElasticsearchIndex("http://unused", "idx", _ANALYZER, client=client)
    client.calls.clear()
    results = index.search(SearchRequest(query=parse_user_query("예산")), AccessFilter(frozenset()))
    assert results.total == 0 and results.hits == []
    assert client.calls == []


def test_offset_beyond_the_window_is_refused_before_the_engine() -> None:
    from indexer.errors import InvalidQueryError

    client = _Recorder()
    index = ElasticsearchIndex(
        "http://unused", "idx", _ANALYZER, client=client, max_result_window=100
    )
    with pytest.raises(InvalidQueryError):
        index.search(
            SearchRequest(query=parse_user_query(""), offset=95, limit=10),
            AccessFilter(frozenset({"gov"})),
        )


def test_completions_are_counted_only_over_readable_documents() -> None:
    access = AccessFilter(frozenset({"gov"}), stale_ids=frozenset({"s"}))
    body = completion_body(access, "wj:ㅈㅏㅁ", 10)
    # ACCESS filters the documents the aggregation counts: a key only unreadable
    # documents hold is neither returned nor counted.
    assert body["query"] == {
        "bool": {
            "filter": [{"prefix": {"complete": {"value": "wj:ㅈㅏㅁ"}}}, access_filter(access)]
        }
    }
    assert body["size"] == 0
    terms = body["aggs"]["keys"]["terms"]
    assert terms["field"] == "complete" and terms["size"] == 10
    assert terms["order"] == [{"_count": "desc"}, {"_key": "asc"}]
    assert terms["execution_hint"] == "map"  # see completion_body


def test_a_completion_prefix_is_a_literal_in_the_aggregation_regexp() -> None:
    # Regexp operators typed by the user (`.*`, `|`, `(`) must not widen the keys kept.
    terms = completion_body(AccessFilter(frozenset({"gov"})), "tj:a.*|(b", 5)["aggs"]["keys"]
    assert terms["terms"]["include"] == "tj\\:a\\.\\*\\|\\(b.*"


def test_words_go_together_so_synonyms_spanning_words_apply() -> None:
    # nori's synonym graph only sees words that reach it in one analysed value:
    # `정부 3.0` must find 정부3.0, `personal data` 개인정보 (tests/relevance on OpenSearch).
    body = text_query(parse_user_query("정부 3.0"))
    assert body["bool"]["must"][0]["bool"]["must"] == [
        {"match": {"text": {"query": "정부 3.0", "operator": "and"}}}
    ]
    stripped = text_query(
        parse_user_query("국민디자인단의 운영"), plain_of=lambda w: w.rstrip("의")
    )
    assert stripped["bool"]["must"][0]["bool"]["must"][0]["match"]["text"]["query"] == (
        "국민디자인단 운영"
    )


def test_writes_are_analysed_and_sent_in_bounded_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.index import elasticsearch
    from tests.factories import index_doc

    analysed: list[int] = []

    def counting(analyzer: KoreanAnalyzer, texts: list[str]) -> list[list[Any]]:
        analysed.append(len(texts))
        return [[] for _ in texts]

    monkeypatch.setattr(elasticsearch, "analyze_texts", counting)
    monkeypatch.setattr(elasticsearch, "DEFAULT_ANALYSIS_CHUNK_CHARS", 1000)
    monkeypatch.setattr(elasticsearch, "_BULK_CHARS", 2000)
    client = _Recorder()
    index = ElasticsearchIndex("http://unused", "idx", _ANALYZER, client=client)
    client.calls.clear()
    index.upsert([index_doc(f"d{i}", "가" * 600) for i in range(6)])
    # About 600 characters each: one document per analysis group (the tokens of a
    # group take tens of times its text), about three per bulk request.
    assert len(analysed) == 6
    bulks = [call for call in client.calls if call == ("POST", "/_bulk")]
    assert 2 <= len(bulks) <= 3
