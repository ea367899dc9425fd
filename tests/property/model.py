"""An independent model of Crossdoc's organisation, documents and access rules.

The property test in `test_no_leak.py` keeps this model in step with what it
does to the real stack and asks it, after every change, what each user must see.
The rules below are written from the public contract (`shared/API.md`,
"Visibility and grants") and deliberately share no code with `auth.access` or
`indexer.access_facts`: a test that computed its expectations with the product's own
functions could not catch a mistake in them.

The rules, as the contract states them:

* visibility `private`: the owner only; `department`: members of the owning
  department; `ministry`: members of the owning ministry; `government`: every
  signed-in user;
* a grant gives its permission (`read` < `write` < `manage`) to `user:NAME`,
  to every member of `dept:CODE` or to every member of `ministry:CODE`, until
  its `expires_at` (the grant has ended *at* that instant);
* the owner and the owning department's `dept_admin`s have `manage`;
* a disabled user reads nothing (and is refused sign-in altogether);
* role `admin` reads no document without a grant. Crossdoc reads this as a
  grant *by name* (`user:NAME`): an administrator is not a reader through a
  grant to their department or ministry, nor through visibility, nor as a
  `dept_admin` (auth/access.py: "separation of duties"). As owner of a
  document an administrator keeps `manage`.
* a deleted document is unreadable by everyone; so is a document that does not
  exist: both answer 404.

Access policies (`/admin/policies`) are one more source of grants: a policy
grants its permission to its principal on every document matching *all* the
attributes its `match` names (`ministry`, `department`, `visibility`, and `tag`:
one of the document's tags), now and in future, until its `expires_at`. They
hold like any grant: `dept:`/`ministry:` policies do not reach administrators.
A policy naming nothing would match everything; the API refuses it, and the
model lets it match nothing.

Searches filter by tag on the tags the index holds: after a tag change, the
tags of the revision last indexed (`DocModel.indexed_tags`). Who may read the
document follows its current tags at once.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

NONE, READ, WRITE, MANAGE = 0, 1, 2, 3
PERMISSIONS = {"read": READ, "write": WRITE, "manage": MANAGE}

#: Content types the index records for each kind of generated file.
CONTENT_TYPES = {"txt": "text/plain", "html": "text/html", "empty": "application/octet-stream"}


@dataclass
class UserModel:
    name: str
    department: str | None
    roles: frozenset[str]
    disabled: bool = False


@dataclass(frozen=True)
class GrantModel:
    principal: str
    permission: int
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class PolicyModel:
    """An access policy: a grant on every document matching all of `match`.

    `id` is the one the product answered with (the model gives out no ids of its
    own); it only names the policy in later requests, never decides access.
    """

    id: int
    match: tuple[tuple[str, str], ...]
    grant: GrantModel


@dataclass
class DocModel:
    id: str
    owner: str
    department: str
    ministry: str
    visibility: str
    tags: tuple[str, ...]
    title: str
    #: Vocabulary words of the title (matched by queries like the body's words).
    title_words: tuple[str, ...]
    filename: str
    #: The words of the extracted text, in order (empty for a file without text).
    body_words: tuple[str, ...]
    kind: str  # txt | html | empty
    content: bytes
    created_at: datetime
    grants: tuple[GrantModel, ...] = ()
    deleted: bool = False
    #: The catalog revision the index last indexed (0: never; then the index has no text).
    indexed_revision: int = 0
    #: (catalog revision, tags from then on), oldest first: what each revision's index holds.
    tag_history: tuple[tuple[int, tuple[str, ...]], ...] = ()
    #: (revision of a delete, revision of the restore that undid it or None): an index
    #: that caught up with a revision in such a span dropped the document's entry.
    dead_spans: tuple[tuple[int, int | None], ...] = ()

    @property
    def in_index(self) -> bool:
        indexed = self.indexed_revision
        return indexed > 0 and not any(
            lo <= indexed and (hi is None or indexed < hi) for lo, hi in self.dead_spans
        )

    @property
    def indexed_tags(self) -> tuple[str, ...]:
        """The tags of the revision last indexed (what a search's tag filter sees)."""
        tags = self.tags
        for revision, then in self.tag_history:
            if revision > self.indexed_revision:
                break
            tags = then
        return tags

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.title_words) | frozenset(self.body_words)


@dataclass
class World:
    departments: dict[str, str] = field(default_factory=dict)  # department → its ministry
    users: dict[str, UserModel] = field(default_factory=dict)
    #: In upload order. Ids are random: drawing by sorted id would not replay.
    docs: dict[str, DocModel] = field(default_factory=dict)
    #: Access policies, expired ones included, in creation order.
    policies: list[PolicyModel] = field(default_factory=list)
    #: Every policy id the product has answered with, deleted policies' included:
    #: API.md, a policy id is never given to another policy.
    policy_ids_ever: set[int] = field(default_factory=set)

    def ministry_of(self, user: UserModel) -> str | None:
        return self.departments.get(user.department) if user.department else None


# -- who may do what ------------------------------------------------------------------


def policy_matches(policy: PolicyModel, doc: DocModel) -> bool:
    """Whether the policy applies to the document (API.md: every attribute named matches)."""
    if not policy.match:
        return False  # a policy that names nothing matches nothing
    facts = {
        "ministry": doc.ministry,
        "department": doc.department,
        "visibility": doc.visibility,
    }
    return all(
        (value in doc.tags) if key == "tag" else facts.get(key) == value
        for key, value in policy.match
    )


def policy_grants(world: World, doc: DocModel) -> list[GrantModel]:
    """The grants that access policies give on `doc`."""
    return [p.grant for p in world.policies if policy_matches(p, doc)]


def policies_in_force(world: World, user: UserModel, now: datetime) -> list[PolicyModel]:
    """The policies active at `now` that grant `user` something on a live document."""
    if user.disabled:
        return []
    live = [d for d in world.docs.values() if not d.deleted]
    return [
        p
        for p in world.policies
        if p.grant.active(now)
        and _holds(world, user, p.grant)
        and any(policy_matches(p, d) for d in live)
    ]


def _holds(world: World, user: UserModel, grant: GrantModel) -> bool:
    if grant.principal == f"user:{user.name}":
        return True
    if "admin" in user.roles:
        return False  # administrators: grants by name only
    ministry = world.ministry_of(user)
    return (user.department is not None and grant.principal == f"dept:{user.department}") or (
        ministry is not None and grant.principal == f"ministry:{ministry}"
    )


def permission(world: World, user: UserModel, doc: DocModel, now: datetime) -> int:
    """The user's permission on the document at `now`: NONE, READ, WRITE or MANAGE."""
    if user.disabled or doc.deleted:
        return NONE
    level = NONE
    for grant in (*doc.grants, *policy_grants(world, doc)):
        if grant.active(now) and _holds(world, user, grant):
            level = max(level, grant.permission)
    if doc.owner == user.name:
        return MANAGE
    if "admin" in user.roles:
        return level
    if "dept_admin" in user.roles and user.department == doc.department:
        return MANAGE
    ministry = world.ministry_of(user)
    sees = (
        doc.visibility == "government"
        or (doc.visibility == "department" and user.department == doc.department)
        or (doc.visibility == "ministry" and ministry is not None and ministry == doc.ministry)
    )
    return max(level, READ) if sees else level


def readable(world: World, user: UserModel, doc: DocModel, now: datetime) -> bool:
    return permission(world, user, doc, now) >= READ


def trash_permission(world: World, user: UserModel, doc: DocModel, now: datetime) -> int:
    """The user's permission on a deleted document as if it were not deleted: who may
    delete a document may see it in the trash and restore it (`manage`)."""
    return permission(world, user, replace(doc, deleted=False), now)


def shared_with(world: World, user: UserModel, doc: DocModel, now: datetime) -> bool:
    """Whether `GET /me/shared` lists `doc` for `user`: another's live document with a
    grant of its own (not a policy's) in force that names the user, their department
    or their ministry (an administrator: by name only)."""
    return (
        not user.disabled
        and not doc.deleted
        and doc.owner != user.name
        and any(g.active(now) and _holds(world, user, g) for g in doc.grants)
    )


# -- what a search must answer -------------------------------------------------------


@dataclass(frozen=True)
class QuerySpec:
    """One search: positive words, at most one phrase, excluded words, filters, a page."""

    words: tuple[str, ...] = ()
    phrase: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    department: str | None = None
    ministry: str | None = None
    content_type: str | None = None
    tag: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    sort: str = "relevance"
    page: int = 1
    size: int = 100

    @property
    def q(self) -> str:
        parts = list(self.words)
        if self.phrase:
            parts.append('"' + " ".join(self.phrase) + '"')
        parts.extend(f"-{w}" for w in self.excluded)
        return " ".join(parts)

    @property
    def params(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {
            "q": self.q,
            "sort": self.sort,
            "page": self.page,
            "size": self.size,
        }
        for name in ("department", "ministry", "content_type", "tag"):
            value = getattr(self, name)
            if value:
                params[name] = value
        if self.created_from:
            params["from"] = self.created_from.isoformat()
        if self.created_to:
            params["to"] = self.created_to.isoformat()
        return params

    @property
    def marked(self) -> frozenset[str]:
        """The words a highlight marks (positive ones only)."""
        return frozenset(self.words) | frozenset(self.phrase)


def _has_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def text_matches(doc: DocModel, query: QuerySpec) -> bool:
    """Whether the document's text and metadata match the query (access aside)."""
    if query.department and doc.department != query.department:
        return False
    if query.ministry and doc.ministry != query.ministry:
        return False
    if query.content_type and doc.content_type != query.content_type:
        return False
    if query.tag and query.tag not in doc.indexed_tags:
        return False
    if query.created_from and doc.created_at < query.created_from:
        return False
    if query.created_to and doc.created_at >= query.created_to:
        return False
    words = doc.words
    if any(w not in words for w in query.words):
        return False
    if query.phrase and not (
        _has_phrase(doc.body_words, query.phrase) or _has_phrase(doc.title_words, query.phrase)
    ):
        return False
    return not any(w in words for w in query.excluded)


def _marked(words: tuple[str, ...] | list[str], marked: frozenset[str]) -> str:
    return " ".join(f"<mark>{w}</mark>" if w in marked else html.escape(w) for w in words)


def expected_highlights(doc: DocModel, query: QuerySpec) -> list[str]:
    """The highlight fragments of a hit: its (short) body with the query's words marked,
    or, when the body holds none of them, its title; none for a query without words."""
    marked = query.marked
    if not marked:
        return []
    if marked & frozenset(doc.body_words):
        return [_marked(doc.body_words, marked)]
    if marked & frozenset(doc.title_words):
        return [_marked(doc.title.split(), marked)]
    return []


@dataclass(frozen=True)
class Expected:
    ids: tuple[str, ...]  # the page, in order when the sort makes it knowable
    ordered: bool
    total: int
    facets: dict[str, dict[str, int]]
    highlights: dict[str, list[str]]
    #: Documents the query's text matches in the index that this user may not read.
    hidden: int


def expected_search(world: World, user: UserModel, query: QuerySpec, now: datetime) -> Expected:
    """What `GET /search` must answer to `user` for `query` at `now`."""
    matching = [
        d for d in world.docs.values() if d.in_index and not d.deleted and text_matches(d, query)
    ]
    found = [d for d in matching if readable(world, user, d, now)]
    facets = {
        "department": dict(Counter(d.department for d in found)),
        "ministry": dict(Counter(d.ministry for d in found)),
        "content_type": dict(Counter(d.content_type for d in found)),
    }
    ordered = query.sort in ("oldest", "newest")
    if ordered:
        found.sort(key=lambda d: (d.created_at, d.id), reverse=query.sort == "newest")
    offset = (query.page - 1) * query.size
    page = found[offset : offset + query.size]
    return Expected(
        ids=tuple(d.id for d in page),
        ordered=ordered,
        total=len(found),
        facets=facets,
        highlights={d.id: expected_highlights(d, query) for d in page},
        hidden=len(matching) - len(found),
    )


# -- what suggestions may show ------------------------------------------------------------


def _suggestable(doc: DocModel) -> str:
    """What of a document suggestions may show: its title, filename, tags (as now
    and as last indexed) and words, lowercased."""
    return " ".join(
        (doc.title, doc.filename, *doc.tags, *doc.indexed_tags, *doc.body_words)
    ).lower()


def suggestion_sources(world: World, user: UserModel, now: datetime) -> list[str]:
    """The suggestable text of each live document `user` may read: every
    suggestion must occur in one, and count no more documents than hold it."""
    return [
        _suggestable(d)
        for d in world.docs.values()
        if not d.deleted and readable(world, user, d, now)
    ]


def hidden_sources(world: World, user: UserModel, now: datetime) -> list[str]:
    """The same for the live, indexed documents `user` may not read (what a leak shows)."""
    return [
        _suggestable(d)
        for d in world.docs.values()
        if not d.deleted and d.in_index and not readable(world, user, d, now)
    ]
