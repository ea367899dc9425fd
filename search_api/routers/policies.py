"""/admin/policies: access policies (role `admin`).

A policy grants a permission to a principal on every document its match selects,
now and in future. Creating, changing or deleting one takes effect in the next
search and download: the documents it touches are marked in the same catalog
transaction (see `Policies.create`), and the change is audited in it too
(`services.policies`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from search_api.deps import AddressDep, AdminDep, PolicyServiceDep, ServicesDep
from search_api.openapi import errors
from search_api.schemas import PolicyGrantIO, PolicyIn, PolicyOut, PolicyPatch
from services.documents import Caller
from services.policies import PolicyUpdate
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import NewPolicy, PolicyRecord

router = APIRouter(prefix="/admin/policies", tags=["policies"])

PolicyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="policy id")]


def policy_out(policy: PolicyRecord, affected: int | None = None) -> PolicyOut:
    now = datetime.now(UTC)
    return PolicyOut(
        id=policy.id,
        name=policy.name,
        match=dict(policy.match),
        grant=PolicyGrantIO(principal=policy.principal, permission=policy.permission),  # type: ignore[arg-type]
        expires_at=policy.expires_at,
        active=policy.expires_at is None or now < policy.expires_at,
        created_at=policy.created_at,
        created_by=policy.created_by,
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
        affected_documents=affected,
    )


def _new_policy(body: PolicyIn) -> NewPolicy:
    return NewPolicy(
        name=body.name,
        match=PolicyMatch.from_dict(body.match.as_dict()),
        principal=body.grant.principal,
        permission=body.grant.permission,
        expires_at=body.expires_at,
    )


@router.post("", status_code=201, response_model=PolicyOut, summary="Create an access policy")
def create_policy(
    body: PolicyIn, policies: PolicyServiceDep, admin: AdminDep, address: AddressDep
) -> PolicyOut:
    change = policies.create(_new_policy(body), Caller(admin.username, address))
    return policy_out(change.policy, change.affected_documents)


@router.get("", response_model=list[PolicyOut], summary="List access policies")
def list_policies(services: ServicesDep, _: AdminDep) -> list[PolicyOut]:
    return [policy_out(p) for p in services.catalog.policies.list_all()]


@router.get(
    "/{policy_id}", response_model=PolicyOut, summary="One access policy", responses=errors(404)
)
def get_policy(policy_id: PolicyId, services: ServicesDep, _: AdminDep) -> PolicyOut:
    return policy_out(services.catalog.policies.get(policy_id))


@router.patch(
    "/{policy_id}",
    response_model=PolicyOut,
    summary="Change an access policy",
    responses=errors(404),
)
def update_policy(
    policy_id: PolicyId,
    body: PolicyPatch,
    policies: PolicyServiceDep,
    admin: AdminDep,
    address: AddressDep,
) -> PolicyOut:
    update = PolicyUpdate(
        name=body.name,
        match=PolicyMatch.from_dict(body.match.as_dict()) if body.match is not None else None,
        principal=body.grant.principal if body.grant is not None else None,
        permission=body.grant.permission if body.grant is not None else None,
        set_expires_at="expires_at" in body.model_fields_set,
        expires_at=body.expires_at,
    )
    change = policies.update(policy_id, update, Caller(admin.username, address))
    return policy_out(change.policy, change.affected_documents)


@router.delete(
    "/{policy_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an access policy (effective at once)",
    responses=errors(404),
)
def delete_policy(
    policy_id: PolicyId, policies: PolicyServiceDep, admin: AdminDep, address: AddressDep
) -> Response:
    policies.delete(policy_id, Caller(admin.username, address))
    return Response(status_code=204)
