"""/admin: the organisation (role `admin`). The audit log is in `routers/audit.py`."""

from __future__ import annotations

from fastapi import APIRouter

from search_api.audit_writer import Auditor
from search_api.deps import AddressDep, AdminDep, AuditorDep, ServicesDep
from search_api.errors import ApiError, not_found
from search_api.openapi import errors
from search_api.schemas import (
    DepartmentIn,
    DepartmentOut,
    MinistryIn,
    MinistryOut,
    UserIn,
    UserOut,
    UserPatch,
)
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
    )


@router.post("/ministries", status_code=201, response_model=MinistryOut, responses=errors(409))
def create_ministry(
    body: MinistryIn,
    services: ServicesDep,
    admin: AdminDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> MinistryOut:
    record = services.catalog.organisation.create_ministry(body.code, body.name)
    auditor.record(
        Auditor.event(
            admin.username,
            "org_change",
            f"ministry:{body.code}",
            address,
            detail={"op": "create", **body.model_dump()},
        )
    )
    return MinistryOut(code=record.code, name=record.name)


@router.get("/ministries", response_model=list[MinistryOut])
def list_ministries(services: ServicesDep, _: AdminDep) -> list[MinistryOut]:
    return [
        MinistryOut(code=m.code, name=m.name)
        for m in services.catalog.organisation.list_ministries()
    ]


@router.post("/departments", status_code=201, response_model=DepartmentOut, responses=errors(409))
def create_department(
    body: DepartmentIn,
    services: ServicesDep,
    admin: AdminDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> DepartmentOut:
    if services.catalog.organisation.get_ministry(body.ministry) is None:
        raise ApiError(422, "validation_error", f"ministry: no ministry {body.ministry}")
    record = services.catalog.organisation.create_department(body.code, body.name, body.ministry)
    auditor.record(
        Auditor.event(
            admin.username,
            "org_change",
            f"dept:{body.code}",
            address,
            detail={"op": "create", **body.model_dump()},
        )
    )
    return DepartmentOut(code=record.code, name=record.name, ministry=record.ministry)


@router.get("/departments", response_model=list[DepartmentOut])
def list_departments(services: ServicesDep, _: AdminDep) -> list[DepartmentOut]:
    return [
        DepartmentOut(code=d.code, name=d.name, ministry=d.ministry)
        for d in services.catalog.organisation.list_departments()
    ]


@router.post("/users", status_code=201, response_model=UserOut, responses=errors(409))
def create_user(
    body: UserIn, services: ServicesDep, admin: AdminDep, auditor: AuditorDep, address: AddressDep
) -> UserOut:
    if (
        body.department is not None
        and services.catalog.organisation.get_department(body.department) is None
    ):
        raise ApiError(422, "validation_error", f"department: no department {body.department}")
    password_hash = services.passwords.hash(body.password)
    roles = sorted({"member", *body.roles})
    record = services.catalog.organisation.create_user(
        body.username, password_hash, body.display_name, body.department, roles
    )
    auditor.record(
        Auditor.event(
            admin.username,
            "org_change",
            f"user:{body.username}",
            address,
            detail={"op": "create", "department": body.department, "roles": roles},
        )
    )
    return user_out(record)


@router.get("/users", response_model=list[UserOut])
def list_users(services: ServicesDep, _: AdminDep) -> list[UserOut]:
    return [user_out(u) for u in services.catalog.organisation.list_users()]


@router.patch("/users/{username}", response_model=UserOut, responses=errors(404, 409))
def update_user(
    username: str,
    body: UserPatch,
    services: ServicesDep,
    admin: AdminDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> UserOut:
    if (
        body.department is not None
        and services.catalog.organisation.get_department(body.department) is None
    ):
        raise ApiError(422, "validation_error", f"department: no department {body.department}")
    roles = sorted({"member", *body.roles}) if body.roles is not None else None
    if username == admin.username and body.disabled:
        raise ApiError(409, "conflict", "you cannot disable yourself")
    if username == admin.username and roles is not None and "admin" not in roles:
        raise ApiError(409, "conflict", "you cannot remove your own admin role")
    before = services.catalog.organisation.get_user(username)
    if before is None:
        raise not_found("user")
    # The change counts from the caller's next request: principals are resolved
    # from the catalog on every request, whatever the token says.
    record = services.catalog.organisation.update_user(
        username, department=body.department, roles=roles, disabled=body.disabled
    )
    auditor.record(
        Auditor.event(
            admin.username,
            "org_change",
            f"user:{username}",
            address,
            detail={
                "op": "update",
                **body.model_dump(exclude_none=True),
                "before": {
                    "department": before.department,
                    "roles": list(before.roles),
                    "disabled": before.disabled,
                },
            },
        )
    )
    return user_out(record)
