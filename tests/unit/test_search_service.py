"""The search service over a fake catalog (its narrow `SearchCatalog` port) and a
recording index: stale entries are decided by the catalog and searched in the
same single index query; a deep page is asked of the index as it is (no
refetch from zero); the late check drops and counts out what the catalog denies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from auth.access import Principal, policy_token
from indexer.index.base import (
    AccessFilter,
    SearchHit,
    SearchRequest,
    SearchResults,
    Suggestion,
    SuggestionKind,
)
from indexer.query import parse_user_query
from services.search import SearchCatalog, search_documents, suggest_for
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import AccessRecord, AccessSnapshot, PolicyRecord

KIM = Principal("kim", "D1", "M1", frozenset({"member"}))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(doc_id: str, owner: str = "lee", visibility: str = "private") -> AccessRecord:
    return AccessRecord(doc_id, owner, "D2", "M2", visibility, ())


class MemorySearchCatalog:
    """The two reads search needs, from memory."""

    def __init__(
        self,
        docs: Sequence[AccessRecord],
        stale: frozenset[str] = frozenset(),
        policies: tuple[PolicyRecord, ...] = (),
        pending: frozenset[int] = frozenset(),
    ) -> None:
        self.docs = {d.id: d for d in docs}
        self.snapshot = AccessSnapshot(policies, pending, stale)

    def access_snapshot(self) -> AccessSnapshot:
        return self.snapshot

    def access_records(self, document_ids: Sequence[str]) -> dict[str, AccessRecord]:
        return {i: self.docs[i] for i in document_ids if i in self.docs}


class RecordingIndex:
    """Answers fixed hits, recording each (request, access) it is asked."""

    schema_rebuilt = False

    def __init__(self, hit_ids: Sequence[str], total: int = 500) -> None:
        self.hits = [
            SearchHit(i, 1.0, "제목", f"{i}.txt", "D2", "M2", "text/plain", T0) for i in hit_ids
        ]
        self.total = total
        self.calls: list[tuple[SearchRequest, AccessFilter]] = []

    def search(self, request: SearchRequest, access: AccessFilter) -> SearchResults:
        self.calls.append((request, access))
        return SearchResults(total=self.total, hits=list(self.hits), facets={})

    def suggest(self, access: AccessFilter, prefix: str, limit: int) -> list[Suggestion]:
        self.calls.append((SearchRequest(parse_user_query(prefix)), access))
        return [Suggestion("예산", SuggestionKind.TERM, 1)]

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the search service should not call {name}")


def test_the_fake_catalog_is_a_search_catalog() -> None:
    catalog: SearchCatalog = MemorySearchCatalog([])  # mypy checks the port's shape
    assert catalog.access_records(["x"]) == {}


def test_stale_entries_go_in_the_same_single_query_and_deep_pages_are_asked_as_they_are() -> None:
    docs = [
        record("shared-now", visibility="government"),  # stale: the catalog now allows it
        record("revoked"),  # stale: the catalog now denies it
        record("fresh", visibility="government"),
    ]
    catalog = MemorySearchCatalog(docs, stale=frozenset({"shared-now", "revoked", "gone"}))
    index = RecordingIndex(["fresh", "shared-now"])
    request = SearchRequest(parse_user_query("예산"), offset=40, limit=20)
    results = search_documents(catalog, index, KIM, request)  # type: ignore[arg-type]
    ((asked, access),) = index.calls  # one query: no second pass, no refetch
    assert (asked.offset, asked.limit) == (40, 20)
    assert asked.with_highlights and asked.with_facets
    assert access.stale_ids == {"shared-now", "revoked", "gone"}
    assert access.readable_stale_ids == {"shared-now"}
    assert KIM.tokens <= access.tokens and access.pending == ()
    assert [h.id for h in results.hits] == ["fresh", "shared-now"] and results.total == 500


def test_the_late_check_drops_and_counts_out_what_the_catalog_denies() -> None:
    catalog = MemorySearchCatalog([record("ok", visibility="government"), record("denied")])
    index = RecordingIndex(["ok", "denied", "deleted"], total=3)
    results = search_documents(catalog, index, KIM, SearchRequest(parse_user_query("예산")))  # type: ignore[arg-type]
    assert [h.id for h in results.hits] == ["ok"] and results.total == 1


def test_pending_policies_of_the_caller_reach_the_filter_as_typed_matches() -> None:
    def policy(pid: int, principal: str, match: PolicyMatch) -> PolicyRecord:
        return PolicyRecord(
            pid, f"p{pid}", match, principal, "read", None, T0, "admin", uid=f"u{pid}"
        )

    policies = (
        policy(1, "user:kim", PolicyMatch(tag="감사")),
        policy(2, "user:lee", PolicyMatch(tag="예산")),  # not the caller's
        policy(3, "dept:D1", PolicyMatch(ministry="M2")),  # the caller's, settled
    )
    catalog = MemorySearchCatalog([], policies=policies, pending=frozenset({1, 2}))
    index = RecordingIndex([])
    suggest_for(catalog, index, KIM, "예")  # type: ignore[arg-type]
    ((_, access),) = index.calls
    assert access.pending == (PolicyMatch(tag="감사"),)
    assert {policy_token("u1", 1), policy_token("u3", 1)} <= access.tokens
    assert policy_token("u2", 1) not in access.tokens


def test_a_caller_without_tokens_never_reaches_the_index() -> None:
    disabled = Principal("kim", "D1", "M1", frozenset({"member"}), disabled=True)
    index = RecordingIndex(["x"])
    catalog = MemorySearchCatalog([record("x", visibility="government")])
    assert (
        search_documents(catalog, index, disabled, SearchRequest(parse_user_query("예산"))).total
        == 0
    )  # type: ignore[arg-type]
    assert suggest_for(catalog, index, disabled, "예") == []  # type: ignore[arg-type]
    assert index.calls == []
