"""Organisation changes: ministries, departments, users.

Each is one unit of work: the change and its audit record commit together or
not at all. Disabling (or deleting) a user revokes every token issued to it in
the same transaction (`Organisation.update_user`). Who may change the
organisation (the `admin` role) is the caller's business; the rules that protect
an admin from locking itself out are here, and so is the scope of a `dept_admin`:
user changes take `within`, None for an administrator, or the department code of a
`dept_admin`, who then manages only that department's members whose roles are
`member`/`dept_admin` (never an administrator or auditor, never someone of another
department), gives only those roles, and moves nobody out (a refusal is audited).

Retiring a ministry or department removes it, and is refused while anything still
refers to it (documents, deleted ones included, users, departments, grants,
policies): its code could otherwise be created again and inherit that access.
Deleting a user keeps the row: the user is disabled (tokens revoked), left out of
lists and the directory, the name is never given out again; their documents stay
with their department (whose `dept_admin`s manage them) and the audit log keeps
every record naming them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.documents import Caller
from services.errors import InUseError, InvalidChangeError, NotAllowedError
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import (
    DepartmentRecord,
    MinistryRecord,
    NewAuditEvent,
    OrgUsage,
    UserRecord,
    audit_event,
)
from storage.errors import ConflictError, NotFoundError

#: Hashes a new password (raises the password policy's own error if it is too weak).
HashPassword = Callable[[str], str]


def _with_member(roles: Sequence[str]) -> list[str]:
    # Every user is a member, whatever else it is.
    return sorted({"member", *roles})


#: The roles a `dept_admin` may hold power over and give.
DEPT_ADMIN_ROLES = frozenset({"member", "dept_admin"})

NOT_IN_SCOPE = (
    "부서 관리자는 자기 부서의 일반 구성원만 관리할 수 있습니다 · "
    "a department admin manages only their own department's members"
)


class _OutOfScope(Exception):
    """Raised inside a unit of work, turned into an audited NotAllowedError outside it."""


_KINDS = {"ministry": ("부처", "ministry"), "dept": ("부서", "department")}


def in_use_message(kind: str, code: str, usage: OrgUsage) -> str:
    """What still refers to a ministry or department, in Korean then English."""
    counts = [
        (usage.documents, "문서 {}건", "{} document(s)"),
        (usage.users, "사용자 {}명", "{} user(s)"),
        (usage.departments, "부서 {}개", "{} department(s)"),
        (usage.grants, "문서 공유 {}건", "{} document grant(s)"),
        (usage.policies, "접근 정책 {}건", "{} access polic(ies)"),
        (usage.folders, "폴더 {}개", "{} folder(s)"),
    ]
    korean = ", ".join(ko.format(n) for n, ko, _ in counts if n)
    english = ", ".join(en.format(n) for n, _, en in counts if n)
    ko_kind, en_kind = _KINDS[kind]
    return (
        f"{ko_kind} {code}에 아직 {korean}이(가) 남아 있습니다. 먼저 옮기거나 지우십시오 · "
        f"{en_kind} {code} still has {english}: move or remove them first"
    )


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
        *,
        within: str | None = None,
    ) -> UserRecord:
        """A new user (always a `member`). Raises InvalidChangeError (no such
        department), the password policy's error, ConflictError (the name exists),
        NotAllowedError (`within` a department: another department, or a role a
        `dept_admin` may not give)."""
        if within is not None and (department != within or not set(roles) <= DEPT_ADMIN_ROLES):
            self._refuse(caller, f"user:{username}", "create", within)
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
        display_name: str | None = None,
        within: str | None = None,
    ) -> UserRecord:
        """Change what is given (None: leave as is). Disabling revokes every token
        issued so far, in the same transaction. The change counts from the user's
        next request: principals are read from the catalog on every request.

        Raises InvalidChangeError (no such department), ConflictError (an admin
        disabling itself or dropping its own admin role), NotFoundError (no such
        user, or a deleted one), NotAllowedError (outside `within`, see the module).
        """
        given: dict[str, object] = {}
        if department is not None:
            given["department"] = department
        if roles is not None:
            given["roles"] = list(roles)
        if disabled is not None:
            given["disabled"] = disabled
        if display_name is not None:
            given["display_name"] = display_name
        all_roles = _with_member(roles) if roles is not None else None
        try:
            return self._update_user(
                username, caller, given, all_roles, department, disabled, display_name, within
            )
        except _OutOfScope:
            assert within is not None
            self._refuse(caller, f"user:{username}", "update", within)
            raise  # not reached: _refuse raises

    def _update_user(
        self,
        username: str,
        caller: Caller,
        given: dict[str, object],
        all_roles: list[str] | None,
        department: str | None,
        disabled: bool | None,
        display_name: str | None,
        within: str | None,
    ) -> UserRecord:
        with self._catalog.unit_of_work() as uow:
            self._check_department(uow, department)
            if username == caller.username and disabled:
                raise ConflictError("you cannot disable yourself")
            if (
                username == caller.username
                and all_roles is not None
                and within is None
                and "admin" not in all_roles
            ):
                raise ConflictError("you cannot remove your own admin role")
            before = self._live_user(uow, username)
            if within is not None and (
                not self._manages(within, before)
                or (department is not None and department != within)
                or (all_roles is not None and not set(all_roles) <= DEPT_ADMIN_ROLES)
            ):
                raise _OutOfScope
            record = uow.organisation.update_user(
                username,
                department=department,
                roles=all_roles,
                disabled=disabled,
                display_name=display_name,
            )
            detail = {
                "op": "update",
                **given,
                "before": {
                    "department": before.department,
                    "roles": list(before.roles),
                    "disabled": before.disabled,
                    **({"display_name": before.display_name} if display_name is not None else {}),
                },
            }
            event = audit_event(
                caller.username, "org_change", f"user:{username}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def delete_user(self, username: str, caller: Caller, *, within: str | None = None) -> None:
        """Delete a user: disabled (every token revoked), left out of lists and the
        directory, the row and name kept (see the module). Raises ConflictError
        (oneself), NotFoundError (no such user, or deleted already), NotAllowedError."""
        if username == caller.username:
            raise ConflictError("you cannot delete yourself")
        if within is not None and not self._manages(
            within, self._live_user(self._catalog, username)
        ):
            self._refuse(caller, f"user:{username}", "delete", within)
        with self._catalog.unit_of_work() as uow:
            before = self._live_user(uow, username)
            if within is not None and not self._manages(within, before):
                raise NotAllowedError(NOT_IN_SCOPE)  # changed since the check above
            uow.organisation.update_user(username, deleted=True)
            detail = {
                "op": "delete",
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

    def list_users(self, *, within: str | None = None, deleted: bool = False) -> list[UserRecord]:
        """Every user (deleted ones only with `deleted`); `within` a department: its
        members only."""
        return [
            u
            for u in self._catalog.organisation.list_users()
            if (deleted or not u.deleted) and (within is None or u.department == within)
        ]

    def rename_ministry(self, code: str, name: str, caller: Caller) -> MinistryRecord:
        """Raises NotFoundError."""
        with self._catalog.unit_of_work() as uow:
            before = uow.organisation.get_ministry(code)
            if before is None:
                raise NotFoundError("ministry not found")
            record = uow.organisation.rename_ministry(code, name)
            detail = {"op": "rename", "name": name, "before": {"name": before.name}}
            event = audit_event(
                caller.username, "org_change", f"ministry:{code}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def rename_department(self, code: str, name: str, caller: Caller) -> DepartmentRecord:
        """Raises NotFoundError."""
        with self._catalog.unit_of_work() as uow:
            before = uow.organisation.get_department(code)
            if before is None:
                raise NotFoundError("department not found")
            record = uow.organisation.rename_department(code, name)
            detail = {"op": "rename", "name": name, "before": {"name": before.name}}
            event = audit_event(
                caller.username, "org_change", f"dept:{code}", caller.address, detail=detail
            )
            self._commit(uow, event)
        return record

    def retire_ministry(self, code: str, caller: Caller) -> None:
        """Remove a ministry nothing refers to. Raises NotFoundError, InUseError."""
        self._retire("ministry", code, caller)

    def retire_department(self, code: str, caller: Caller) -> None:
        """Remove a department nothing refers to. Raises NotFoundError, InUseError."""
        self._retire("dept", code, caller)

    def _retire(self, kind: str, code: str, caller: Caller) -> None:
        with self._catalog.unit_of_work() as uow:
            org = uow.organisation
            before = org.get_ministry(code) if kind == "ministry" else org.get_department(code)
            if before is None:
                raise NotFoundError(f"{_KINDS[kind][1]} not found")
            # Checked in the write transaction: nothing can join it meanwhile.
            usage = org.usage(kind, code)
            if not usage.empty:
                raise InUseError(in_use_message(kind, code, usage))
            if kind == "ministry":
                org.delete_ministry(code)
            else:
                org.delete_department(code)
            detail: dict[str, object] = {"op": "retire", "name": before.name}
            if isinstance(before, DepartmentRecord):
                detail["ministry"] = before.ministry
            event = audit_event(
                caller.username, "org_change", f"{kind}:{code}", caller.address, detail=detail
            )
            self._commit(uow, event)

    @staticmethod
    def _live_user(store: CatalogStore | UnitOfWork, username: str) -> UserRecord:
        user = store.organisation.get_user(username)
        if user is None or user.deleted:
            raise NotFoundError("user not found")
        return user

    @staticmethod
    def _manages(within: str, user: UserRecord) -> bool:
        return user.department == within and set(user.roles) <= DEPT_ADMIN_ROLES

    def _refuse(self, caller: Caller, target: str, op: str, within: str) -> None:
        """Record a refused user change and raise NotAllowedError. Called outside any
        unit of work (the refusal's record is its own write)."""
        detail = {"op": op, "within": within}
        with self._catalog.unit_of_work() as uow:
            uow.audit.append(
                [audit_event(caller.username, "denied", target, caller.address, "denied", detail)]
            )
            uow.commit()
        raise NotAllowedError(NOT_IN_SCOPE)

    @staticmethod
    def _check_department(store: CatalogStore | UnitOfWork, department: str | None) -> None:
        if department is not None and store.organisation.get_department(department) is None:
            raise InvalidChangeError(f"department: no department {department}")
