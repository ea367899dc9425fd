"""Turning catalog records into the access facts of `auth.access` (including policies)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from auth.access import DocumentAccess, Grant, Permission
from storage.catalog.records import DocumentRecord, PolicyRecord


def policy_matches(policy: PolicyRecord, doc: DocumentRecord) -> bool:
    """A policy applies when every attribute it names matches the document."""
    match = policy.match
    if not match:
        return False  # an empty match would grant on everything: refuse (fail closed)
    checks = {
        "ministry": lambda v: doc.ministry == v,
        "department": lambda v: doc.department == v,
        "tag": lambda v: v in doc.tags,
        "visibility": lambda v: doc.visibility == v,
    }
    for key, value in match.items():
        check = checks.get(key)
        if check is None or not check(value):
            return False
    return True


def document_access(doc: DocumentRecord, policies: Sequence[PolicyRecord] = ()) -> DocumentAccess:
    grants = [
        Grant(g.principal, Permission.parse(g.permission), g.expires_at) for g in doc.grants
    ]
    grants.extend(
        Grant(p.principal, Permission.parse(p.permission), p.expires_at)
        for p in policies
        if policy_matches(p, doc)
    )
    return DocumentAccess(
        owner=doc.owner,
        department=doc.department,
        ministry=doc.ministry,
        visibility=doc.visibility,
        grants=tuple(grants),
    )


