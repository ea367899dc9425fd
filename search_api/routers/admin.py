"""/admin: the organisation (role `admin`). The audit log is in `routers/audit.py`.

Changes go through `services.organisation` and `services.accounts` (each audited
in its own unit of work). The user routes also let `dept_admin`s in: they manage
their own department's members only (the services' scope rule, `within`).
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from auth.access import Principal
from search_api.deps import (
    AccountServiceDep,
    AddressDep,
    AdminDep,
    OrganisationServiceDep,
    ServicesDep,
    UserManagerDep,
)
from search_api.openapi import errors
from search_api.schemas import (
    DepartmentIn,
    DepartmentOut,
    MinistryIn,
    MinistryOut,
    PasswordResetIn,
    PasswordResetOut,
    RenameIn,
    UnlockOut,
    UserIn,
    UserOut,
    UserPatch,
)
from services.documents import Caller
from services.errors import NotAllowedError
from services.organisation import NOT_IN_SCOPE
from storage.catalog.records import UserRecord

router = APIRouter(prefix="/admin", tags=["admin"])


def user_out(user: UserRecord) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        department=user.department,
        ministry=user.ministry,
        roles=list(user.roles),
        disabled=user.disabled,
        password_change_required=user.must_change_password,
        deleted=user.deleted,
    )


def scope(manager: Principal) -> str | None:
    """None for an administrator (every user); a `dept_admin`'s own department (its
    members only). A `dept_admin` of no department manages no one."""
    if manager.has_role("admin"):
        return None
    if manager.department is None:
        raise NotAllowedError(NOT_IN_SCOPE)
    return manager.department


@router.post("/ministries", status_code=201, response_model=MinistryOut, responses=errors(409))
def create_ministry(
    body: MinistryIn,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> MinistryOut:
    record = organisation.create_ministry(body.code, body.name, Caller(admin.username, address))
    return MinistryOut(code=record.code, name=record.name)


@router.patch("/ministries/{code}", response_model=MinistryOut, responses=errors(404))
def rename_ministry(
    code: str,
    body: RenameIn,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> MinistryOut:
    """Rename a ministry (its code stays: documents and grants name it)."""
    record = organisation.rename_ministry(code, body.name, Caller(admin.username, address))
    return MinistryOut(code=record.code, name=record.name)


@router.delete(
    "/ministries/{code}", status_code=204, response_class=Response, responses=errors(404, 409)
)
def retire_ministry(
    code: str, organisation: OrganisationServiceDep, admin: AdminDep, address: AddressDep
) -> Response:
    """Retire (remove) a ministry: 409 `in_use` while it has departments, users,
    documents, grants or policies, saying what to move first."""
    organisation.retire_ministry(code, Caller(admin.username, address))
    return Response(status_code=204)


@router.get("/ministries", response_model=list[MinistryOut])
def list_ministries(services: ServicesDep, _: AdminDep) -> list[MinistryOut]:
    return [
        MinistryOut(code=m.code, name=m.name)
        for m in services.catalog.organisation.list_ministries()
    ]


@router.post("/departments", status_code=201, response_model=DepartmentOut, responses=errors(409))
def create_department(
    body: DepartmentIn,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> DepartmentOut:
    record = organisation.create_department(
        body.code, body.name, body.ministry, Caller(admin.username, address)
    )
    return DepartmentOut(code=record.code, name=record.name, ministry=record.ministry)


@router.patch("/departments/{code}", response_model=DepartmentOut, responses=errors(404))
def rename_department(
    code: str,
    body: RenameIn,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> DepartmentOut:
    """Rename a department (its code stays: documents and grants name it)."""
    record = organisation.rename_department(code, body.name, Caller(admin.username, address))
    return DepartmentOut(code=record.code, name=record.name, ministry=record.ministry)


@router.delete(
    "/departments/{code}", status_code=204, response_class=Response, responses=errors(404, 409)
)
def retire_department(
    code: str, organisation: OrganisationServiceDep, admin: AdminDep, address: AddressDep
) -> Response:
    """Retire (remove) a department: 409 `in_use` while it has users, documents
    (deleted ones too), grants or policies, saying what to move first."""
    organisation.retire_department(code, Caller(admin.username, address))
    return Response(status_code=204)


@router.get("/departments", response_model=list[DepartmentOut])
def list_departments(services: ServicesDep, _: AdminDep) -> list[DepartmentOut]:
    return [
        DepartmentOut(code=d.code, name=d.name, ministry=d.ministry)
        for d in services.catalog.organisation.list_departments()
    ]


@router.post("/users", status_code=201, response_model=UserOut, responses=errors(409))
def create_user(
    body: UserIn,
    organisation: OrganisationServiceDep,
    manager: UserManagerDep,
    address: AddressDep,
) -> UserOut:
    """Create a user (`dept_admin`s: in their own department, roles `member` or
    `dept_admin` only)."""
    record = organisation.create_user(
        body.username,
        body.password,
        body.display_name,
        body.department,
        body.roles,
        Caller(manager.username, address),
        within=scope(manager),
    )
    return user_out(record)


@router.get("/users", response_model=list[UserOut])
def list_users(
    organisation: OrganisationServiceDep,
    manager: UserManagerDep,
    include_deleted: bool = Query(False, description="list deleted users too"),
) -> list[UserOut]:
    """Every user (a `dept_admin`: their department's members)."""
    return [
        user_out(u) for u in organisation.list_users(within=scope(manager), deleted=include_deleted)
    ]


@router.patch("/users/{username}", response_model=UserOut, responses=errors(404, 409))
def update_user(
    username: str,
    body: UserPatch,
    organisation: OrganisationServiceDep,
    manager: UserManagerDep,
    address: AddressDep,
) -> UserOut:
    """Move (department), roles, disable, display name. A `dept_admin` changes only
    their department's members, gives only `member`/`dept_admin`, moves no one out."""
    record = organisation.update_user(
        username,
        Caller(manager.username, address),
        department=body.department,
        roles=body.roles,
        disabled=body.disabled,
        display_name=body.display_name,
        within=scope(manager),
    )
    return user_out(record)


@router.delete(
    "/users/{username}", status_code=204, response_class=Response, responses=errors(404, 409)
)
def delete_user(
    username: str,
    organisation: OrganisationServiceDep,
    manager: UserManagerDep,
    address: AddressDep,
) -> Response:
    """Delete a user: disabled and signed out, left out of lists and the directory;
    their documents stay with their department, the audit log keeps every record,
    and the name is never given out again."""
    organisation.delete_user(username, Caller(manager.username, address), within=scope(manager))
    return Response(status_code=204)


@router.post(
    "/users/{username}/password",
    response_model=PasswordResetOut,
    responses=errors(404),
)
def reset_password(
    username: str,
    accounts: AccountServiceDep,
    manager: UserManagerDep,
    address: AddressDep,
    body: PasswordResetIn | None = None,
) -> PasswordResetOut:
    """Reset a user's password (a generated one-time password when none is given,
    shown once): the user is signed out everywhere and must change it at next
    sign-in."""
    result = accounts.reset_password(
        username,
        Caller(manager.username, address),
        body.password if body else None,
        within=scope(manager),
    )
    return PasswordResetOut(
        username=result.user.username,
        password=result.password,
        password_change_required=result.user.must_change_password,
    )


@router.post("/users/{username}/unlock", response_model=UnlockOut, responses=errors(404))
def unlock_user(
    username: str,
    accounts: AccountServiceDep,
    manager: UserManagerDep,
    address: AddressDep,
) -> UnlockOut:
    """Lift a sign-in lockout (too many failed sign-ins for this name)."""
    was_locked = accounts.unlock(username, Caller(manager.username, address), within=scope(manager))
    return UnlockOut(username=username, was_locked=was_locked)
