"""Who may do what to a document: pure functions over plain data.

A document's *readers* are principal tokens; a caller's *principal* is the set of
tokens that identify them, resolved from the live catalog on every request (never
from token claims, so a move or a disable takes effect at once). A caller may
read a document when the two sets intersect. The same function computes the
readers stored in the search index and answers the late re-check against the
catalog, so the two can only disagree when the index is stale.

Tokens:
    user:NAME        the user NAME
    dept:CODE        members of department CODE
    deptadmin:CODE   the `dept_admin`s of department CODE (they manage its documents)
    ministry:CODE    members of ministry CODE
    gov              every signed-in, enabled user

In the search index only (see `index_readers`, `search_tokens`):
    policy:UID.GEN   the grant of the access policy whose catalog uid is UID
                     (generation GEN of its match); a caller holds it while the
                     policy is active and grants one of the caller's tokens,
                     decided at query time. UID is random and never given to
                     another policy, so the tokens a deleted policy left in the
                     index count for no one (its id might be given out again)
    visibility:V     the document's visibility; held by no one (lets a search
                     select documents by visibility)

Fail closed: a disabled user has no tokens; a document always has at least its
owner and its department's admins as readers; an unknown visibility grants
nothing beyond those.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

GOV = "gov"


class Visibility(enum.StrEnum):
    PRIVATE = "private"
    DEPARTMENT = "department"
    MINISTRY = "ministry"
    GOVERNMENT = "government"


VISIBILITIES: tuple[str, ...] = tuple(v.value for v in Visibility)


class Permission(enum.IntEnum):
    """Ordered: each permission includes the ones below it."""

    READ = 1
    WRITE = 2
    MANAGE = 3

    @classmethod
    def parse(cls, value: str) -> Permission:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown permission {value!r}") from None


class Role(enum.StrEnum):
    MEMBER = "member"
    DEPT_ADMIN = "dept_admin"
    ADMIN = "admin"
    AUDITOR = "auditor"


PRINCIPAL_KINDS = ("user", "dept", "ministry")


def user_token(username: str) -> str:
    return f"user:{username}"


def dept_token(code: str) -> str:
    return f"dept:{code}"


def dept_admin_token(code: str) -> str:
    return f"deptadmin:{code}"


def ministry_token(code: str) -> str:
    return f"ministry:{code}"


#: The form of a grant principal. It reads the same in Python, in JSON Schema (ECMA 262,
#: where the API documents it) and in pydantic: the engines' `\s` differ at the edges, so
#: whitespace and control characters are also excluded by hand.
GRANT_PRINCIPAL_PATTERN = rf"^({'|'.join(PRINCIPAL_KINDS)}):[^\s\x00-\x1f\x7f-\x9f\ufeff]+$"
_GRANT_PRINCIPAL = re.compile(GRANT_PRINCIPAL_PATTERN)


def validate_grant_principal(principal: str) -> str:
    """Check the `user:…`/`dept:…`/`ministry:…` form of a grant principal; return it."""
    if not _GRANT_PRINCIPAL.fullmatch(principal):
        raise ValueError("principal must be user:NAME, dept:CODE or ministry:CODE")
    return principal


@dataclass(frozen=True)
class Principal:
    """The caller, as resolved from the catalog for this request."""

    username: str
    department: str | None
    ministry: str | None
    roles: frozenset[str] = frozenset()
    disabled: bool = False

    @property
    def tokens(self) -> frozenset[str]:
        """Reader tokens this caller holds. Empty for a disabled user: they see nothing."""
        if self.disabled or not self.username:
            return frozenset()
        if Role.ADMIN in self.roles:
            # Separation of duties: administrators manage the organisation and
            # policies, and read only what is granted to them by name.
            return frozenset({user_token(self.username)})
        tokens = {user_token(self.username), GOV}
        if self.department:
            tokens.add(dept_token(self.department))
            if Role.DEPT_ADMIN in self.roles:
                tokens.add(dept_admin_token(self.department))
        if self.ministry:
            tokens.add(ministry_token(self.ministry))
        return frozenset(tokens)

    def has_role(self, *roles: str) -> bool:
        return not self.disabled and any(role in self.roles for role in roles)


@dataclass(frozen=True)
class Grant:
    """An explicit permission on one document (or from a policy) for a principal."""

    principal: str
    permission: Permission
    expires_at: datetime | None = None
    #: Set when the grant comes from an access policy.
    policy_id: int | None = None
    policy_name: str = ""
    #: Bumped when the policy's match changes (its index token changes with it).
    policy_generation: int = 0
    #: The policy's unique, never reused uid: its index token is made of it.
    policy_uid: str = ""

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class DocumentAccess:
    """The facts about a document that decide who may access it."""

    owner: str
    department: str
    ministry: str
    visibility: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)


class SourceKind(enum.StrEnum):
    """What gives a reader token its permission on a document."""

    OWNER = "owner"
    DEPT_ADMIN = "dept_admin"
    VISIBILITY = "visibility"
    GRANT = "grant"
    POLICY = "policy"


@dataclass(frozen=True)
class AccessSource:
    """One reason a token holds a permission on a document."""

    token: str
    kind: SourceKind
    permission: Permission
    expires_at: datetime | None = None
    policy_id: int | None = None
    policy_name: str = ""


def _visibility_tokens(doc: DocumentAccess) -> set[str]:
    match doc.visibility:
        case Visibility.DEPARTMENT:
            return {dept_token(doc.department)}
        case Visibility.MINISTRY:
            return {ministry_token(doc.ministry)}
        case Visibility.GOVERNMENT:
            return {GOV}
        case _:  # private, or anything unknown: nobody beyond the managers
            return set()


def _grant_source(grant: Grant) -> AccessSource:
    return AccessSource(
        token=grant.principal,
        kind=SourceKind.GRANT if grant.policy_id is None else SourceKind.POLICY,
        permission=grant.permission,
        expires_at=grant.expires_at,
        policy_id=grant.policy_id,
        policy_name=grant.policy_name,
    )


def access_sources(doc: DocumentAccess, now: datetime) -> tuple[AccessSource, ...]:
    """Every (token, permission) the document gives at time `now`, with why.

    The one rule everything else is derived from: the readers in the index,
    every permission check, and the explanations shown to administrators.
    """
    sources = [
        AccessSource(dept_admin_token(doc.department), SourceKind.DEPT_ADMIN, Permission.MANAGE)
    ]
    if doc.owner:
        sources.append(AccessSource(user_token(doc.owner), SourceKind.OWNER, Permission.MANAGE))
    sources.extend(
        AccessSource(token, SourceKind.VISIBILITY, Permission.READ)
        for token in sorted(_visibility_tokens(doc))
    )
    sources.extend(_grant_source(grant) for grant in doc.grants if grant.active(now))
    return tuple(sources)


def inactive_sources(doc: DocumentAccess, now: datetime) -> tuple[AccessSource, ...]:
    """Grants and policies on the document that have expired (they give nothing now)."""
    return tuple(_grant_source(grant) for grant in doc.grants if not grant.active(now))


def holders_of(doc: DocumentAccess, permission: Permission, now: datetime) -> frozenset[str]:
    """Tokens that hold at least `permission` on the document at time `now`."""
    return frozenset(s.token for s in access_sources(doc, now) if s.permission >= permission)


def readers_of(doc: DocumentAccess, now: datetime) -> frozenset[str]:
    """The reader tokens stored in the index for this document."""
    return holders_of(doc, Permission.READ, now)


def policy_token(policy_uid: str, generation: int) -> str:
    """The index token of a policy's match: from its uid, never its id (ids may recur)."""
    if not policy_uid:
        raise ValueError("a policy token needs the policy's uid")
    return f"policy:{policy_uid}.{generation}"


def _policy_tokens(grants: Iterable[Grant]) -> set[str]:
    # A policy grant without its uid gets no token (fail closed: it is written to
    # no index entry and held by no one), rather than one shared with others.
    return {
        policy_token(g.policy_uid, g.policy_generation)
        for g in grants
        if g.policy_id is not None and g.policy_uid
    }


def visibility_token(visibility: str) -> str:
    return f"visibility:{visibility}"


def index_readers(doc: DocumentAccess, now: datetime) -> frozenset[str]:
    """The tokens stored in the search index's readers field for this document.

    `readers_of`, except that a policy's grant is stored as the policy's token,
    whatever its expiry, not as its principal: whether a caller holds it is
    decided at query time (`search_tokens`), so deleting a policy, changing its
    principal or expiry, or its expiring, needs no re-index. Plus the
    `visibility:` token, which no caller holds.
    """
    tokens = {s.token for s in access_sources(doc, now) if s.kind is not SourceKind.POLICY}
    tokens.update(_policy_tokens(doc.grants))
    tokens.add(visibility_token(doc.visibility))
    return frozenset(tokens)


def search_tokens(
    principal: Principal, policy_grants: Iterable[Grant], now: datetime
) -> frozenset[str]:
    """The tokens a search by `principal` matches the index's readers with.

    The principal's tokens, plus the token of every active policy (all policies
    in force, as `Grant`s with their `policy_id`) granting one of them. For a
    document indexed with the same policies, the two sets meet exactly when
    `can(principal, doc, READ, now)`.
    """
    tokens = principal.tokens
    if not tokens:
        return frozenset()
    held = _policy_tokens(g for g in policy_grants if g.active(now) and g.principal in tokens)
    return tokens | held


def can(principal: Principal, doc: DocumentAccess, permission: Permission, now: datetime) -> bool:
    """Whether the caller holds `permission` on the document now."""
    return not principal.tokens.isdisjoint(holders_of(doc, permission, now))


class Denial(enum.StrEnum):
    """Why a caller does not hold a permission."""

    DISABLED = "user_disabled"
    ADMIN_WITHOUT_GRANT = "admin_without_grant"
    NO_MATCHING_SOURCE = "no_matching_source"


@dataclass(frozen=True)
class AccessExplanation:
    """Whether a caller holds a permission on a document, and why (or why not)."""

    allowed: bool
    permission: Permission
    #: The sources whose token the caller holds (empty when not allowed).
    because: tuple[AccessSource, ...]
    #: Set when not allowed.
    denial: Denial | None
    #: The caller's tokens, as resolved from the catalog.
    tokens: frozenset[str]
    #: Expired grants and policies that would have given the permission.
    expired: tuple[AccessSource, ...] = ()


def explain(
    principal: Principal, doc: DocumentAccess, permission: Permission, now: datetime
) -> AccessExplanation:
    """`can`, with its reasons: the same sources, so the verdicts cannot differ."""
    tokens = principal.tokens
    because = tuple(
        s for s in access_sources(doc, now) if s.permission >= permission and s.token in tokens
    )
    expired = tuple(
        s for s in inactive_sources(doc, now) if s.permission >= permission and s.token in tokens
    )
    denial: Denial | None = None
    if not because:
        if principal.disabled:
            denial = Denial.DISABLED
        elif Role.ADMIN in principal.roles:
            denial = Denial.ADMIN_WITHOUT_GRANT
        else:
            denial = Denial.NO_MATCHING_SOURCE
    return AccessExplanation(
        allowed=bool(because),
        permission=permission,
        because=because,
        denial=denial,
        tokens=tokens,
        expired=expired,
    )


def next_expiry(grants: Iterable[Grant], now: datetime) -> datetime | None:
    """The earliest future expiry among the grants (when the readers will change next)."""
    future = [g.expires_at for g in grants if g.expires_at is not None and g.expires_at > now]
    return min(future) if future else None
