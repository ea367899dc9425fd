"""Organisation changes: ministries, departments, users.

Each is one unit of work: the change and its audit record commit together or
not at all. Disabling a user revokes every token issued to it in the same
transaction (`Organisation.update_user`). Who may change the organisation
(the `admin` role) is the caller's business; the rules that protect an admin
from locking itself out are here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.documents import Caller
from services.errors import InvalidChangeError
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import (
    DepartmentRecord,
    MinistryRecord,
    NewAuditEvent,
    UserRecord,
    audit_event,
)
from storage.errors import ConflictError, NotFoundError

#: Hashes a new password (raises the password policy's own error if it is too weak).
HashPassword = Callable[[str], str]


def _with_member(roles: Sequence[str]) -> list[str]:
    # Every user is a member, whatever else it is.
    return sorted({"member", *roles})


class OrganisationService:
    """Organisation changes over a catalog, each audited in its own unit of work."""

    def __init__(self, catalog: CatalogStore, hash_password: HashPassword) -> None:
        self._catalog = catalog
        self._hash_password = hash_password

    @staticmethod
    def _commit(uow: UnitOfWork, event: NewAuditEvent) -> None:
        uow.audit.append([event])
        uow.commit()

    def create_ministry(self, code: str, name: str, caller: Caller) -> MinistryRecord:
        """Raises ConflictError (the code exists)."""
        with self._catalog.unit_of_work() as uow:
            record = uow.organisation.create_ministry(code, name)
            detail = {"op": "create", "code": code, "name": name}
            event = audit_event(
                caller.username, "org_change", f"ministry:{code}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def create_department(
        self, code: str, name: str, ministry: str, caller: Caller
    ) -> DepartmentRecord:
        """Raises InvalidChangeError (no such ministry), ConflictError (the code exists)."""
        with self._catalog.unit_of_work() as uow:
            if uow.organisation.get_ministry(ministry) is None:
                raise InvalidChangeError(f"ministry: no ministry {ministry}")
            record = uow.organisation.create_department(code, name, ministry)
            detail = {"op": "create", "code": code, "name": name, "ministry": ministry}
            event = audit_event(
                caller.username, "org_change", f"dept:{code}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def create_user(
        self,
        username: str,
        password: str,
        display_name: str,
        department: str | None,
        roles: Sequence[str],
        caller: Caller,
    ) -> UserRecord:
        """A new user (always a `member`). Raises InvalidChangeError (no such
        department), the password policy's error, ConflictError (the name exists)."""
        self._check_department(self._catalog, department)
        # Hashed before the write transaction: hashing is slow on purpose and must
        # not hold the catalog's write lock.
        password_hash = self._hash_password(password)
        all_roles = _with_member(roles)
        with self._catalog.unit_of_work() as uow:
            self._check_department(uow, department)
            record = uow.organisation.create_user(
                username, password_hash, display_name, department, all_roles
            )
            detail = {"op": "create", "department": department, "roles": all_roles}
            event = audit_event(
                caller.username, "org_change", f"user:{username}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def update_user(
        self,
        username: str,
        caller: Caller,
        *,
        department: str | None = None,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord:
        """Change what is given (None: leave as is). Disabling revokes every token
        issued so far, in the same transaction. The change counts from the user's
        next request: principals are read from the catalog on every request.

        Raises InvalidChangeError (no such department), ConflictError (an admin
        disabling itself or dropping its own admin role), NotFoundError (no such user).
        """
        given: dict[str, object] = {}
        if department is not None:
            given["department"] = department
        if roles is not None:
            given["roles"] = list(roles)
        if disabled is not None:
            given["disabled"] = disabled
        all_roles = _with_member(roles) if roles is not None else None
        with self._catalog.unit_of_work() as uow:
            self._check_department(uow, department)
            if username == caller.username and disabled:
                raise ConflictError("you cannot disable yourself")
            if username == caller.username and all_roles is not None and "admin" not in all_roles:
                raise ConflictError("you cannot remove your own admin role")
            before = uow.organisation.get_user(username)
            if before is None:
                raise NotFoundError("user not found")
            record = uow.organisation.update_user(
                username, department=department, roles=all_roles, disabled=disabled
            )
            detail = {
                "op": "update",
                **given,
                "before": {
                    "department": before.department,
                    "roles": list(before.roles),
                    "disabled": before.disabled,
                },
            }
            event = audit_event(
                caller.username, "org_change", f"user:{username}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    @staticmethod
    def _check_department(store: CatalogStore | UnitOfWork, department: str | None) -> None:
        if department is not None and store.organisation.get_department(department) is None:
            raise InvalidChangeError(f"department: no department {department}")
