"""/admin/policies: access policies (role `admin`).

A policy grants a permission to a principal on every document its match selects,
now and in future. Creating, changing or deleting one takes effect in the next
search and download: the documents it touches are marked in the same catalog
transaction (see `Policies.create`), and the change is audited in it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from search_api.audit_writer import Auditor
from search_api.deps import AddressDep, AdminDep, ServicesDep
from search_api.errors import ApiError
from search_api.openapi import errors
from search_api.schemas import PolicyGrantIO, PolicyIn, PolicyOut, PolicyPatch
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.ports import CatalogStore
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


def _check_references(catalog: CatalogStore, new: NewPolicy) -> None:
    """Names in a policy must exist: a typo would silently grant nothing (or later, too much)."""
    kind, _, name = new.principal.partition(":")
    exists = {
        "user": lambda: catalog.organisation.get_user(name) is not None,
        "dept": lambda: catalog.organisation.get_department(name) is not None,
        "ministry": lambda: catalog.organisation.get_ministry(name) is not None,
    }[kind]()
    if not exists:
        raise ApiError(422, "validation_error", f"grant.principal: no such {kind} {name}")
    if "ministry" in new.match and catalog.organisation.get_ministry(new.match["ministry"]) is None:
        raise ApiError(
            422, "validation_error", f"match.ministry: no ministry {new.match['ministry']}"
        )
    if (
        "department" in new.match
        and catalog.organisation.get_department(new.match["department"]) is None
    ):
        raise ApiError(
            422, "validation_error", f"match.department: no department {new.match['department']}"
        )


def _new_policy(body: PolicyIn) -> NewPolicy:
    return NewPolicy(
        name=body.name,
        match=PolicyMatch.from_dict(body.match.as_dict()),
        principal=body.grant.principal,
        permission=body.grant.permission,
        expires_at=body.expires_at,
    )


def _described(new: NewPolicy) -> dict[str, object]:
    return {
        "name": new.name,
        "match": dict(new.match),
        "principal": new.principal,
        "permission": new.permission,
        "expires_at": new.expires_at.isoformat() if new.expires_at else None,
    }


@router.post("", status_code=201, response_model=PolicyOut, summary="Create an access policy")
def create_policy(
    body: PolicyIn, services: ServicesDep, admin: AdminDep, address: AddressDep
) -> PolicyOut:
    new = _new_policy(body)
    _check_references(services.catalog, new)
    audit = Auditor.event(admin.username, "policy_create", "", address, detail=_described(new))
    change = services.catalog.policies.create(new, admin.username, audit=audit)
    services.dispatcher.notify(())
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
    services: ServicesDep,
    admin: AdminDep,
    address: AddressDep,
) -> PolicyOut:
    old = services.catalog.policies.get(policy_id)
    given = body.model_fields_set
    new = NewPolicy(
        name=body.name if body.name is not None else old.name,
        match=PolicyMatch.from_dict(body.match.as_dict()) if body.match is not None else old.match,
        principal=body.grant.principal if body.grant is not None else old.principal,
        permission=body.grant.permission if body.grant is not None else old.permission,
        expires_at=body.expires_at if "expires_at" in given else old.expires_at,
    )
    _check_references(services.catalog, new)
    detail = {**_described(new), "before": _described(_as_new(old))}
    audit = Auditor.event(admin.username, "policy_update", "", address, detail=detail)
    change = services.catalog.policies.update(policy_id, new, admin.username, audit=audit)
    services.dispatcher.notify(())
    return policy_out(change.policy, change.affected_documents)


@router.delete(
    "/{policy_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an access policy (effective at once)",
    responses=errors(404),
)
def delete_policy(
    policy_id: PolicyId, services: ServicesDep, admin: AdminDep, address: AddressDep
) -> Response:
    old = services.catalog.policies.get(policy_id)
    audit = Auditor.event(
        admin.username, "policy_delete", "", address, detail=_described(_as_new(old))
    )
    services.catalog.policies.delete(policy_id, audit=audit)
    services.dispatcher.notify(())
    return Response(status_code=204)


def _as_new(policy: PolicyRecord) -> NewPolicy:
    return NewPolicy(
        policy.name, policy.match, policy.principal, policy.permission, policy.expires_at
    )
