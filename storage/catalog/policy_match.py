"""Which documents an access policy applies to: the rule, in one place.

`PolicyMatch` names document attributes (ministry, department, tag, visibility,
folder: the document is filed in that folder or one under it); a document
matches when it has every attribute the match names. A match that
names nothing matches nothing (it would grant on every document: fail closed).

The rule has three translations, which must agree with `PolicyMatch.matches`
(one property test checks all three on the same generated documents,
`tests/unit/test_policy_match.py`):

* Python: `PolicyMatch.matches(doc)` (enforcement, the explain endpoints);
* SQL: `match_clause(match, documents, sqlite=…)` here (the catalog's fan-out
  of a policy to its documents, its counts);
* the search index: each adapter's own query (Tantivy:
  `TantivyIndex._policy_match_query`; Elasticsearch: a `bool` of `term`
  filters, see `indexer.index.base.AccessFilter`).

Migration 0007 keeps its own frozen copy of the SQL, as migrations must.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table, and_, exists, false, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB

#: The document attributes a policy can match on, in the order they are stored.
POLICY_MATCH_KEYS: tuple[str, ...] = ("ministry", "department", "tag", "visibility", "folder")


class MatchableDocument(Protocol):
    """What a match looks at (`DocumentRecord` and `AccessRecord` have it)."""

    @property
    def ministry(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def visibility(self) -> str: ...
    @property
    def tags(self) -> Collection[str]: ...
    @property
    def folder_path(self) -> Collection[str]: ...


@dataclass(frozen=True)
class PolicyMatch(Mapping[str, str]):
    """The attributes a policy's documents must all have; None: not named.

    Also a read-only mapping of the attributes it names (`dict(match)` is the
    stored JSON and the API's `match` object), so it reads like one.
    Raises `ValueError` for a value that is not a non-empty string.
    """

    ministry: str | None = None
    department: str | None = None
    tag: str | None = None
    visibility: str | None = None
    #: A folder id: documents filed in it or in a folder under it.
    folder: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"policy match {f.name}: a non-empty string or nothing")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyMatch:
        """A match from its stored or API form. Raises `ValueError` for an unknown key."""
        unknown = sorted(set(data) - set(POLICY_MATCH_KEYS))
        if unknown:
            raise ValueError(f"policy match: unknown attribute {', '.join(unknown)}")
        return cls(**{k: data[k] for k in POLICY_MATCH_KEYS if data.get(k) is not None})

    @classmethod
    def stored(cls, data: Mapping[str, Any] | None) -> PolicyMatch:
        """A match as the catalog holds it; one it cannot read (an attribute this
        release does not know, a value that is not a string) matches nothing,
        as an unknown attribute never matches (fail closed)."""
        try:
            return cls.from_dict(data or {})
        except (ValueError, TypeError):
            return cls()

    @property
    def is_empty(self) -> bool:
        """Names nothing, so matches nothing."""
        return not any(getattr(self, k) is not None for k in POLICY_MATCH_KEYS)

    def matches(self, doc: MatchableDocument) -> bool:
        """The rule: `doc` has every attribute named (and the match names one)."""
        if self.is_empty:
            return False  # an empty match would grant on everything: refuse (fail closed)
        return (
            (self.ministry is None or doc.ministry == self.ministry)
            and (self.department is None or doc.department == self.department)
            and (self.tag is None or self.tag in doc.tags)
            and (self.visibility is None or doc.visibility == self.visibility)
            and (self.folder is None or self.folder in doc.folder_path)
        )

    # -- the read-only mapping of the attributes named --------------------------------

    def __getitem__(self, key: str) -> str:
        value = getattr(self, key, None) if key in POLICY_MATCH_KEYS else None
        if value is None:
            raise KeyError(key)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (k for k in POLICY_MATCH_KEYS if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def match_clause(match: PolicyMatch, documents: Table, *, sqlite: bool) -> ColumnElement[bool]:
    """`match.matches` in SQL over the documents table (`ministry`, `department`,
    `visibility` columns; `tags` a JSON array; `folder_id`, with the folders table's
    id paths), for SQLite or PostgreSQL."""
    if match.is_empty:
        return false()  # an empty match would select everything: fail closed
    clauses: list[ColumnElement[bool]] = []
    for key in ("ministry", "department", "visibility"):
        value = getattr(match, key)
        if value is not None:
            clauses.append(documents.c[key] == value)
    if match.tag is not None:
        if sqlite:
            each = func.json_each(documents.c.tags).table_valued("value")
            clauses.append(exists(select(1).select_from(each).where(each.c.value == match.tag)))
        else:
            clauses.append(sql_cast(documents.c.tags, JSONB).contains([match.tag]))
    if match.folder is not None:
        # The folder's subtree: every folder whose id path passes through it (ids
        # are hex, so they hold no LIKE wildcard; anything else matches nothing).
        folders = documents.metadata.tables["folders"]
        if not match.folder.isalnum():
            return false()
        subtree = select(folders.c.id).where(folders.c.path.contains(f"/{match.folder}/"))
        clauses.append(documents.c.folder_id.in_(subtree))
    return and_(*clauses)
