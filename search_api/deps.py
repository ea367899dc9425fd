"""FastAPI dependencies, as `Annotated` aliases used by every router."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from auth.access import Permission, Principal, can
from auth.errors import InvalidTokenError
from auth.ratelimit import RateRule
from auth.tokens import TokenClaims
from crossdoc.wiring.api import Services
from indexer.access_facts import document_access, principal_of
from search_api.audit_writer import Auditor
from search_api.errors import ApiError, forbidden, not_found
from search_api.openapi import raises
from search_api.web.session import cookie_token
from services.accounts import AccountService
from services.audit import AuditService
from services.directory import DirectoryService
from services.documents import Caller, DocumentService
from services.explain import ExplainService
from services.folders import FolderService
from services.organisation import OrganisationService
from services.policies import PolicyService
from services.sessions import SessionService
from storage.catalog.records import DocumentRecord, UserRecord
from storage.errors import NotFoundError

_DOCUMENT_ID = re.compile(r"^[0-9a-f]{32}$")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def request_token(
    request: Request, bearer: Annotated[str | None, Depends(oauth2_scheme)]
) -> str | None:
    """The caller's access token: the `Authorization: Bearer` header, else the web session's
    cookie (the same token, verified the same way), which needs the CSRF token on any
    state-changing request (a cross-site form or script cannot send it)."""
    if bearer:
        return bearer
    return cookie_token(request)


TokenDep = Annotated[str | None, Depends(request_token)]


# Dependencies that only read request state are `async def`: FastAPI runs a plain
# `def` dependency on a worker thread, and each such hop costs more than the work.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_auditor(request: Request) -> Auditor:
    auditor: Auditor = request.app.state.auditor
    return auditor


ServicesDep = Annotated[Services, Depends(get_services)]
AuditorDep = Annotated[Auditor, Depends(get_auditor)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def _client_address(request: Request) -> str:
    return client_address(request)


AddressDep = Annotated[str, Depends(_client_address)]


async def document_service(services: ServicesDep) -> DocumentService:
    """Document changes, each in one unit of work, waking the index worker after commit."""
    return DocumentService(services.catalog, services.dispatcher.notify)


DocumentServiceDep = Annotated[DocumentService, Depends(document_service)]


async def organisation_service(services: ServicesDep) -> OrganisationService:
    """Ministry, department and user changes, each audited in its unit of work."""
    return OrganisationService(services.catalog, services.passwords.hash)


OrganisationServiceDep = Annotated[OrganisationService, Depends(organisation_service)]


async def policy_service(services: ServicesDep) -> PolicyService:
    """Policy changes, each in one unit of work, waking the index worker after commit."""
    return PolicyService(services.catalog, services.dispatcher.notify)


PolicyServiceDep = Annotated[PolicyService, Depends(policy_service)]


async def folder_service(services: ServicesDep) -> FolderService:
    """Folder reads (what the caller may see) and changes, each audited in its unit of work."""
    return FolderService(services.catalog, services.dispatcher.notify)


FolderServiceDep = Annotated[FolderService, Depends(folder_service)]


async def audit_service(services: ServicesDep) -> AuditService:
    """The audit log: pages, export, chain check."""
    return AuditService(services.catalog)


AuditServiceDep = Annotated[AuditService, Depends(audit_service)]


async def explain_service(services: ServicesDep) -> ExplainService:
    """Why a user can read a document, and who can (each explanation audited)."""
    return ExplainService(services.catalog)


ExplainServiceDep = Annotated[ExplainService, Depends(explain_service)]


async def session_service(services: ServicesDep) -> SessionService:
    """Refresh-token spending and sign-out, each audited in its unit of work."""
    return SessionService(services.catalog, services.tokens.max_lifetime)


SessionServiceDep = Annotated[SessionService, Depends(session_service)]


async def account_service(services: ServicesDep) -> AccountService:
    """Password changes and resets, unlocking (each audited)."""
    return AccountService(
        services.catalog,
        services.passwords.hash,
        services.passwords.verify,
        services.tokens.max_lifetime,
        limiter=services.limiter,
        failures=services.rate_rules.sign_in_failures_per_user,
    )


AccountServiceDep = Annotated[AccountService, Depends(account_service)]


async def directory_service(services: ServicesDep) -> DirectoryService:
    """Names and codes of users, departments and ministries (the sharing dialog)."""
    return DirectoryService(services.catalog)


DirectoryServiceDep = Annotated[DirectoryService, Depends(directory_service)]

CHANGE_FIRST_MESSAGE = (
    "비밀번호를 바꾼 뒤에 이용할 수 있습니다 (POST /api/v1/auth/password) · "
    "change your password first (POST /api/v1/auth/password)"
)


def _verified_access_token(services: Services, token: str | None) -> TokenClaims:
    """The claims of a signed, unexpired access token (revocation not checked here)."""
    if not token:
        raise InvalidTokenError("no token")
    return services.tokens.verify(token, "access")


@raises(401)
def access_claims(services: ServicesDep, token: TokenDep) -> TokenClaims:
    """The claims of a valid, unrevoked access token."""
    claims = _verified_access_token(services, token)
    if services.catalog.tokens.is_revoked(
        claims.token_id, claims.family, claims.subject, claims.issued_at
    ):
        raise InvalidTokenError("token revoked")
    return claims


AccessClaimsDep = Annotated[TokenClaims, Depends(access_claims)]


def _token_holder(services: Services, token: str | None) -> UserRecord:
    claims = _verified_access_token(services, token)
    user = services.catalog.tokens.holder(
        claims.subject, claims.token_id, claims.family, claims.issued_at
    )
    if user is None or user.disabled:
        raise InvalidTokenError("revoked token, or unknown or disabled user")
    return user


@raises(401, 403)
def current_principal(services: ServicesDep, token: TokenDep) -> Principal:
    """The caller, from a valid access token and the *live* catalog (never from claims).

    The same checks as `access_claims`, with the user read in the same transaction
    as the revocations: one thread hop and one catalog round trip per request.
    A user whose password was reset must change it first: every route but
    `/me`, `/auth/password`, `/auth/refresh` and `/auth/logout` answers
    `403 password_change_required` until then.
    """
    user = _token_holder(services, token)
    if user.must_change_password:
        raise ApiError(403, "password_change_required", CHANGE_FIRST_MESSAGE)
    return principal_of(user)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


@raises(401)
def current_user_pending_change(services: ServicesDep, token: TokenDep) -> UserRecord:
    """The caller as `current_principal` finds it, also while a password change is
    required (for `/me` and `/auth/password` only). No password hash."""
    return _token_holder(services, token)


SignedInUserDep = Annotated[UserRecord, Depends(current_user_pending_change)]


async def caller(principal: PrincipalDep, address: AddressDep) -> Caller:
    """Who asks (and from where), for the services' audit records."""
    return Caller(principal.username, address)


CallerDep = Annotated[Caller, Depends(caller)]


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets only callers with one of `roles` through (403, audited)."""

    def dependency(
        principal: PrincipalDep, auditor: AuditorDep, request: Request, address: AddressDep
    ) -> Principal:
        if not principal.has_role(*roles):
            auditor.record(
                Auditor.event(
                    principal.username,
                    "denied",
                    request.url.path,
                    address,
                    "denied",
                    {"method": request.method, "needs": list(roles)},
                )
            )
            raise forbidden()
        return principal

    return raises(403)(dependency)


def enforce_rate(
    services: Services,
    auditor: Auditor,
    limits: Sequence[tuple[RateRule | None, str]],
    *,
    actor: str,
    address: str,
    target: str = "",
    detail: Mapping[str, object] | None = None,
) -> None:
    """Spend one unit of every (rule, key) limit, or answer 429 with `Retry-After` (audited).

    Nothing is spent unless every limit allows the request, so a request refused
    for its address does not also count against its user.
    """
    active = [(rule, key) for rule, key in limits if rule is not None]
    refused = next(
        (
            (rule, key, decision)
            for rule, key in active
            if not (decision := services.limiter.check(f"{rule.name}:{key}", rule)).allowed
        ),
        None,
    )
    if refused is None:
        for rule, key in active:
            decision = services.limiter.consume(f"{rule.name}:{key}", rule)
            if not decision.allowed:  # another request took the last unit meanwhile
                refused = (rule, key, decision)
                break
    if refused is None:
        return
    rule, key, decision = refused
    # Batched: a flood of refused requests must not turn into a flood of fsyncs.
    auditor.record_later(
        Auditor.event(
            actor,
            "throttled",
            target,
            address,
            "denied",
            {"limit": rule.name, "key": key.split(":", 1)[0], **(detail or {})},
        )
    )
    raise ApiError(
        429,
        "too_many_requests",
        "요청이 너무 많습니다 · too many requests; try again later",
        {"Retry-After": decision.retry_after_header},
    )


def rate_limited(kind: Literal["search", "download"]) -> Callable[..., Awaitable[None]]:
    """A dependency applying the per-user and per-address limits of `kind`.

    Asked on the event loop when the limiter answers from memory (no thread hop
    on every search), on a worker thread when it has to go over the network.
    """

    async def dependency(
        services: ServicesDep,
        auditor: AuditorDep,
        principal: PrincipalDep,
        address: AddressDep,
        request: Request,
    ) -> None:
        rules = services.rate_rules
        per_user, per_address = (
            (rules.search_per_user, rules.search_per_address)
            if kind == "search"
            else (rules.download_per_user, rules.download_per_address)
        )
        enforce = functools.partial(
            enforce_rate,
            services,
            auditor,
            [(per_user, f"user:{principal.username}"), (per_address, f"address:{address}")],
            actor=principal.username,
            address=address,
            detail={"path": request.url.path},
        )
        if services.limiter.in_memory:
            enforce()
        else:
            await run_in_threadpool(enforce)

    return raises(429)(dependency)


SearchRateDep = Annotated[None, Depends(rate_limited("search"))]
DownloadRateDep = Annotated[None, Depends(rate_limited("download"))]

AdminDep = Annotated[Principal, Depends(require_roles("admin"))]
#: Administrators (every user) and department admins (their department's members).
UserManagerDep = Annotated[Principal, Depends(require_roles("admin", "dept_admin"))]
AuditorRoleDep = Annotated[Principal, Depends(require_roles("auditor", "admin"))]


@dataclass(frozen=True)
class DocumentAccessContext:
    principal: Principal
    document: DocumentRecord


def _load(
    services: Services,
    principal: Principal,
    document_id: str,
    permission: Permission,
    auditor: Auditor,
    request: Request,
) -> DocumentRecord:
    # Missing, deleted and unreadable documents answer the same 404, so that ids
    # of documents one may not read cannot be probed; the audit log tells them apart.
    def refuse(outcome: str, error: ApiError) -> ApiError:
        auditor.record_later(
            Auditor.event(
                principal.username,
                "denied",
                document_id,
                client_address(request),
                outcome,
                {
                    "method": request.method,
                    "path": request.url.path,
                    "needs": permission.name.lower(),
                    "status": error.status,
                },
            )
        )
        return error

    if not _DOCUMENT_ID.match(document_id):
        raise refuse("not_found", not_found())
    try:
        doc = services.catalog.documents.get(document_id)
    except NotFoundError:
        raise refuse("not_found", not_found()) from None
    access = document_access(doc, services.catalog.policies.list_all())
    now = datetime.now(UTC)
    if not can(principal, access, Permission.READ, now):
        raise refuse("denied", not_found())
    if not can(principal, access, permission, now):
        raise refuse(
            "denied", forbidden(f"you need '{permission.name.lower()}' permission on this document")
        )
    return doc


DocumentId = Annotated[str, Path(max_length=64, description="document id")]


def _document_loader(permission: Permission) -> Callable[..., DocumentRecord]:
    """The dependency loading the path's document for `permission` (see `_load`)."""

    def load(
        services: ServicesDep,
        principal: PrincipalDep,
        document_id: DocumentId,
        auditor: AuditorDep,
        request: Request,
    ) -> DocumentRecord:
        return _load(services, principal, document_id, permission, auditor, request)

    load.__name__ = f"{permission.name.lower()}_document"
    # Reading answers 404 only: a document one may not read is not there.
    return raises(404)(load) if permission is Permission.READ else raises(403, 404)(load)


ReadableDoc = Annotated[DocumentRecord, Depends(_document_loader(Permission.READ))]
WritableDoc = Annotated[DocumentRecord, Depends(_document_loader(Permission.WRITE))]
ManagedDoc = Annotated[DocumentRecord, Depends(_document_loader(Permission.MANAGE))]
