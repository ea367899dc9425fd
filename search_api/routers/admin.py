"""/admin: the organisation (role `admin`). The audit log is in `routers/audit.py`.

Changes go through `services.organisation` (each audited in its own unit of work).
"""

from __future__ import annotations

from fastapi import APIRouter

from search_api.deps import AddressDep, AdminDep, OrganisationServiceDep, ServicesDep
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
from services.documents import Caller
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
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> MinistryOut:
    record = organisation.create_ministry(body.code, body.name, Caller(admin.username, address))
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
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> DepartmentOut:
    record = organisation.create_department(
        body.code, body.name, body.ministry, Caller(admin.username, address)
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
    body: UserIn, organisation: OrganisationServiceDep, admin: AdminDep, address: AddressDep
) -> UserOut:
    record = organisation.create_user(
        body.username,
        body.password,
        body.display_name,
        body.department,
        body.roles,
        Caller(admin.username, address),
    )
    return user_out(record)


@router.get("/users", response_model=list[UserOut])
def list_users(services: ServicesDep, _: AdminDep) -> list[UserOut]:
    return [user_out(u) for u in services.catalog.organisation.list_users()]


@router.patch("/users/{username}", response_model=UserOut, responses=errors(404, 409))
def update_user(
    username: str,
    body: UserPatch,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> UserOut:
    record = organisation.update_user(
        username,
        Caller(admin.username, address),
        department=body.department,
        roles=body.roles,
        disabled=body.disabled,
    )
    return user_out(record)
