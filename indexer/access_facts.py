"""Turning catalog records into the access facts of `auth.access` (including policies)."""

from __future__ import annotations

from collections.abc import Sequence

from auth.access import DocumentAccess, Grant, Permission, Principal
from storage.catalog.records import AccessRecord, DocumentRecord, PolicyRecord, UserRecord


def policy_matches(policy: PolicyRecord, doc: DocumentRecord | AccessRecord) -> bool:
    """A policy applies when every attribute its match names matches the document
    (the rule is `PolicyMatch.matches`: one place, with its SQL and index translations)."""
    return policy.match.matches(doc)


def policy_grant(policy: PolicyRecord) -> Grant:
    """A policy's grant, as the access rules see it (it names its policy)."""
    return Grant(
        policy.principal,
        Permission.parse(policy.permission),
        policy.expires_at,
        policy.id,
        policy.name,
        policy.generation,
        policy.uid,
    )


def document_access(
    doc: DocumentRecord | AccessRecord, policies: Sequence[PolicyRecord] = ()
) -> DocumentAccess:
    """The access facts of a document: its own grants and those of the policies matching it."""
    grants = [Grant(g.principal, Permission.parse(g.permission), g.expires_at) for g in doc.grants]
    grants.extend(policy_grant(p) for p in policies if policy_matches(p, doc))
    return DocumentAccess(
        owner=doc.owner,
        department=doc.department,
        ministry=doc.ministry,
        visibility=doc.visibility,
        grants=tuple(grants),
    )


def principal_of(user: UserRecord) -> Principal:
    """The principal of a catalog user (its live department, ministry, roles, state)."""
    return Principal(
        username=user.username,
        department=user.department,
        ministry=user.ministry,
        roles=frozenset(user.roles),
        disabled=user.disabled,
    )
