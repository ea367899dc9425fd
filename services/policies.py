"""Access policy changes: create, update, delete.

Each is one unit of work: the policy, the fan-out it queues (the documents a new
match selects, re-indexed for access) and its audit record commit together
(`Policies.create`/`update`/`delete`), and the index worker is woken only after
the commit. Names a policy refers to must exist: a typo would silently grant
nothing (or, once someone takes the name, too much).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.documents import Caller
from services.errors import InvalidChangeError
from services.grantees import principal_exists
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import NewPolicy, PolicyChange, PolicyRecord, audit_event

#: Wakes the index worker (policy fan-outs are outbox rows without a document list).
Notify = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class PolicyUpdate:
    """What an update changes; None leaves a field as it is, except `expires_at`,
    which is changed whenever `set_expires_at` is true (None: never expires)."""

    name: str | None = None
    match: PolicyMatch | None = None
    principal: str | None = None
    permission: str | None = None
    set_expires_at: bool = False
    expires_at: datetime | None = None

    def applied_to(self, old: PolicyRecord) -> NewPolicy:
        return NewPolicy(
            name=self.name if self.name is not None else old.name,
            match=self.match if self.match is not None else old.match,
            principal=self.principal if self.principal is not None else old.principal,
            permission=self.permission if self.permission is not None else old.permission,
            expires_at=self.expires_at if self.set_expires_at else old.expires_at,
        )


def described(new: NewPolicy) -> dict[str, object]:
    """A policy as its audit records show it."""
    return {
        "name": new.name,
        "match": dict(new.match),
        "principal": new.principal,
        "permission": new.permission,
        "expires_at": new.expires_at.isoformat() if new.expires_at else None,
    }


def as_new(policy: PolicyRecord) -> NewPolicy:
    return NewPolicy(
        policy.name, policy.match, policy.principal, policy.permission, policy.expires_at
    )


def check_references(uow: UnitOfWork, new: NewPolicy) -> None:
    """Raises InvalidChangeError if the principal, or a ministry or department the
    match names, does not exist."""
    org = uow.organisation
    kind, _, name = new.principal.partition(":")
    if not principal_exists(org, new.principal):
        raise InvalidChangeError(f"grant.principal: no such {kind} {name}")
    if "ministry" in new.match and org.get_ministry(new.match["ministry"]) is None:
        raise InvalidChangeError(f"match.ministry: no ministry {new.match['ministry']}")
    if "department" in new.match and org.get_department(new.match["department"]) is None:
        raise InvalidChangeError(f"match.department: no department {new.match['department']}")
    if "folder" in new.match and not uow.folders.get_many([new.match["folder"]]):
        raise InvalidChangeError(
            f"match.folder: 그런 폴더가 없습니다 · no folder {new.match['folder']}"
        )


class PolicyService:
    """Policy changes over a catalog, each in one unit of work."""

    def __init__(self, catalog: CatalogStore, notify: Notify | None = None) -> None:
        self._catalog = catalog
        self._notify = notify

    def _wake_after_commit(self, uow: UnitOfWork) -> None:
        notify = self._notify
        if notify is not None:
            uow.after_commit(lambda: notify(()))

    def create(self, new: NewPolicy, caller: Caller) -> PolicyChange:
        """Create a policy and queue its documents. Raises InvalidChangeError."""
        with self._catalog.unit_of_work() as uow:
            check_references(uow, new)
            audit = audit_event(
                caller.username, "policy_create", "", caller.address, detail=described(new)
            )
            change = uow.policies.create(new, caller.username, audit=audit)
            self._wake_after_commit(uow)
            uow.commit()
        return change

    def update(self, policy_id: int, update: PolicyUpdate, caller: Caller) -> PolicyChange:
        """Change what `update` gives; a new match is queued. Raises NotFoundError,
        InvalidChangeError."""
        with self._catalog.unit_of_work() as uow:
            old = uow.policies.get(policy_id)
            new = update.applied_to(old)
            check_references(uow, new)
            detail = {**described(new), "before": described(as_new(old))}
            audit = audit_event(caller.username, "policy_update", "", caller.address, detail=detail)
            change = uow.policies.update(policy_id, new, caller.username, audit=audit)
            self._wake_after_commit(uow)
            uow.commit()
        return change

    def delete(self, policy_id: int, caller: Caller) -> None:
        """Delete a policy (its grants stop counting at once). Raises NotFoundError."""
        with self._catalog.unit_of_work() as uow:
            old = uow.policies.get(policy_id)
            audit = audit_event(
                caller.username,
                "policy_delete",
                "",
                caller.address,
                detail=described(as_new(old)),
            )
            uow.policies.delete(policy_id, audit=audit)
            self._wake_after_commit(uow)
            uow.commit()
