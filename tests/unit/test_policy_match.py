"""One policy-match rule, three translations: Python (`PolicyMatch.matches`), SQL
(`match_clause`, on SQLite) and the search index (Tantivy's pending-policy
filter) select the same documents, for generated matches over generated
documents. About 10 s."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, delete, insert, select

from auth.access import visibility_token
from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import AccessFilter, IndexDocument, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query
from storage.catalog import models as m
from storage.catalog.policy_match import POLICY_MATCH_KEYS, PolicyMatch, match_clause
from storage.catalog.ports import CatalogStore
from storage.catalog.records import AccessRecord
from storage.catalog.sql import SqlCatalog

MINISTRY_OF = {"D1": "M1", "D2": "M1", "D3": "M2"}
VISIBILITIES = ("private", "department", "ministry", "government")
#: Tags that are parts of one another: a match is on whole tags only.
TAGS = ("감사", "예산", "감", "예산감사")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: Folders (id -> department, parent): FA > FB in D1, FC in D2.
FA, FB, FC = "a" * 32, "b" * 32, "c" * 32
FOLDERS = {FA: ("D1", ""), FB: ("D1", FA), FC: ("D2", "")}
#: A folder's ancestry, its own id last (what documents carry).
ANCESTRY = {FA: (FA,), FB: (FA, FB), FC: (FC,)}

documents = st.lists(
    st.builds(
        lambda dept, vis, tags, folder: AccessRecord(
            id=uuid.uuid4().hex,
            owner="kim",
            department=dept,
            ministry=MINISTRY_OF[dept],
            visibility=vis,
            tags=tuple(tags),
            folder_path=ANCESTRY[folder] if folder else (),
        ),
        st.sampled_from(sorted(MINISTRY_OF)),
        st.sampled_from(VISIBILITIES),
        st.lists(st.sampled_from(TAGS), max_size=3, unique=True),
        st.none() | st.sampled_from(sorted(FOLDERS)),
    ),
    min_size=1,
    max_size=12,
)
matches = st.builds(
    PolicyMatch,
    ministry=st.none() | st.sampled_from(["M1", "M2", "M3"]),
    department=st.none() | st.sampled_from([*MINISTRY_OF, "D9"]),
    tag=st.none() | st.sampled_from([*TAGS, "없음"]),
    visibility=st.none() | st.sampled_from(VISIBILITIES),
    folder=st.none() | st.sampled_from([*FOLDERS, "d" * 32]),
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CatalogStore, TantivyIndex]]:
    root = tmp_path_factory.mktemp("policy-match")
    catalog = SqlCatalog(f"sqlite:///{root / 'catalog.sqlite3'}")
    catalog.migrate()
    for ministry in sorted(set(MINISTRY_OF.values())):
        catalog.organisation.create_ministry(ministry, ministry)
    for dept, ministry in MINISTRY_OF.items():
        catalog.organisation.create_department(dept, dept, ministry)
    folders: Table = m.Folder.__table__  # type: ignore[assignment]
    with catalog.engine.begin() as conn:
        conn.execute(
            insert(folders),
            [
                {
                    "id": folder,
                    "department": dept,
                    "parent_id": parent,
                    "name": folder[:4],
                    "path": "/" + "".join(f + "/" for f in ANCESTRY[folder]),
                    "created_at": T0,
                    "created_by": "kim",
                    "updated_at": T0,
                }
                for folder, (dept, parent) in FOLDERS.items()
            ],
        )
    index = TantivyIndex(root / "index", KoreanAnalyzer())
    yield catalog, index
    index.close()
    catalog.close()


def _row(doc: AccessRecord, i: int) -> dict[str, object]:
    sha = doc.id * 2
    return {
        "id": doc.id,
        "title": "문서",
        "filename": "a.txt",
        "declared_type": "text/plain",
        "content_type": "text/plain",
        "size": 1,
        "sha256": sha,
        "blob_key": f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}",
        "department": doc.department,
        "ministry": doc.ministry,
        "owner": doc.owner,
        "visibility": doc.visibility,
        "tags": list(doc.tags),
        "status": "indexed",
        "status_detail": "",
        "version": 1,
        "revision": 1,
        "acl_revision": 1,
        "indexed_revision": 1,
        "created_at": T0 + timedelta(minutes=i),
        "updated_at": T0,
        "deleted_at": None,
        "folder_id": doc.folder_path[-1] if doc.folder_path else None,
    }


def _entry(doc: AccessRecord) -> IndexDocument:
    return IndexDocument(
        id=doc.id,
        revision=1,
        title="문서",
        filename="a.txt",
        body="",
        department=doc.department,
        ministry=doc.ministry,
        content_type="text/plain",
        tags=doc.tags,
        owner=doc.owner,
        # Readers as `auth.access.index_readers` writes them: the visibility token too.
        readers=frozenset({f"user:{doc.owner}", visibility_token(doc.visibility)}),
        created_at=T0,
        updated_at=T0,
        folder=doc.folder_path[-1] if doc.folder_path else "",
        folder_path=doc.folder_path,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=documents, generated=st.lists(matches, min_size=1, max_size=6))
def test_python_sql_and_index_select_the_same_documents(
    stores: tuple[CatalogStore, TantivyIndex],
    docs: list[AccessRecord],
    generated: list[PolicyMatch],
) -> None:
    catalog, index = stores
    table: Table = m.Document.__table__  # type: ignore[assignment]
    with catalog.engine.begin() as conn:
        conn.execute(delete(table))
        conn.execute(insert(table), [_row(d, i) for i, d in enumerate(docs)])
    index.clear()
    index.upsert([_entry(d) for d in docs])
    index.refresh()
    for match in [*generated, PolicyMatch()]:
        by_python = {d.id for d in docs if match.matches(d)}
        with catalog.engine.connect() as conn:
            by_sql = set(
                conn.scalars(select(table.c.id).where(match_clause(match, table, sqlite=True)))
            )
        # A caller whose tokens read nothing, with this match pending: exactly its documents.
        access = AccessFilter(frozenset({"user:nobody"}), pending=(match,))
        found = index.search(SearchRequest(parse_user_query(""), limit=100), access)
        by_index = {h.id for h in found.hits}
        assert by_python == by_sql == by_index, match
        assert found.total == len(by_python)
        if match.is_empty:
            assert by_python == set()  # names nothing: matches nothing, never everything


def test_a_match_is_validated_and_reads_like_its_stored_json() -> None:
    match = PolicyMatch.from_dict({"tag": "감사", "ministry": "M1"})
    assert dict(match) == {"ministry": "M1", "tag": "감사"}
    assert "tag" in match and match["tag"] == "감사" and "visibility" not in match
    assert PolicyMatch.from_dict(dict(match)) == match
    with pytest.raises(ValueError, match="unknown attribute owner"):
        PolicyMatch.from_dict({"owner": "kim"})
    with pytest.raises(ValueError, match="non-empty"):
        PolicyMatch(tag="")
    # A stored match this release cannot read matches nothing (fail closed).
    assert PolicyMatch.stored({"owner": "kim"}).is_empty
    assert PolicyMatch.stored({"tag": 3}).is_empty
    assert PolicyMatch.stored(None).is_empty
    assert tuple(POLICY_MATCH_KEYS) == ("ministry", "department", "tag", "visibility", "folder")


def test_the_stored_json_and_the_api_shape_are_unchanged(tmp_path: Path) -> None:
    """The catalog stores and returns the same JSON object as before the type."""
    from storage.catalog.records import NewPolicy

    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    catalog.migrate()
    try:
        catalog.organisation.create_ministry("M1", "M1")
        new = NewPolicy("p", PolicyMatch(ministry="M1", visibility="ministry"), "user:kim", "read")
        created = catalog.policies.create(new, "admin").policy
        with catalog.engine.connect() as conn:
            stored = conn.scalar(select(m.Policy.match).where(m.Policy.id == created.id))
        assert stored == {"ministry": "M1", "visibility": "ministry"}
        assert catalog.policies.get(created.id).match == PolicyMatch(
            ministry="M1", visibility="ministry"
        )
    finally:
        catalog.close()
