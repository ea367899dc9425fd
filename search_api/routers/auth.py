"""/auth/token, /auth/refresh, /auth/logout and /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from auth.errors import InvalidCredentialsError
from search_api.audit_writer import Auditor
from search_api.deps import (
    AccessClaimsDep,
    AddressDep,
    AuditorDep,
    PrincipalDep,
    ServicesDep,
    SessionServiceDep,
    enforce_rate,
)
from search_api.errors import ApiError
from search_api.openapi import errors
from search_api.schemas import Me, RefreshRequest, TokenResponse

router = APIRouter(tags=["auth"])


def _tokens(services: ServicesDep, username: str, family: str | None = None) -> TokenResponse:
    access, refresh = services.tokens.issue_pair(username, family)
    return TokenResponse(
        access_token=access.token,
        expires_in=int(services.tokens.access_ttl.total_seconds()),
        refresh_token=refresh.token,
    )


def _check_sign_in_rates(
    services: ServicesDep, auditor: Auditor, username: str, address: str
) -> None:
    rules = services.rate_rules
    enforce_rate(
        services,
        auditor,
        [(rules.sign_in_per_address, f"address:{address}")],
        actor=username,
        address=address,
        target=username,
    )
    failures = rules.sign_in_failures_per_user
    if failures is None:
        return
    # Failed attempts for one username count from every address together, so a
    # password guesser spread over many addresses is still slowed down.
    decision = services.limiter.check(f"{failures.name}:user:{username}", failures)
    if not decision.allowed:
        auditor.record_later(
            Auditor.event(username, "sign_in", username, address, "denied", {"reason": "throttled"})
        )
        raise ApiError(
            429,
            "too_many_requests",
            "로그인 시도가 너무 많습니다 · too many failed sign-ins; try again later",
            {"Retry-After": decision.retry_after_header},
        )


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Sign in (OAuth2 password flow)",
    responses={**errors(401), 429: {"description": "too many sign-ins (see Retry-After)"}},
)
async def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> TokenResponse:
    username = form.username.strip().lower()[:64]
    _check_sign_in_rates(services, auditor, username, address)
    user = await run_in_threadpool(services.catalog.organisation.get_user, username)
    # Argon2 verification is deliberately slow: keep it off the event loop.
    valid = await run_in_threadpool(
        services.passwords.verify, user.password_hash if user else None, form.password
    )
    if user is None or not valid or user.disabled:
        reason = (
            "disabled"
            if user is not None and valid
            else "unknown_user"
            if user is None
            else "wrong_password"
        )
        failures = services.rate_rules.sign_in_failures_per_user
        if failures is not None:
            services.limiter.consume(f"{failures.name}:user:{username}", failures)
        await run_in_threadpool(
            auditor.record,
            Auditor.event(username, "sign_in", username, address, "denied", {"reason": reason}),
        )
        raise InvalidCredentialsError("sign-in failed")
    await run_in_threadpool(auditor.record, Auditor.event(username, "sign_in", username, address))
    return _tokens(services, username)


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="Exchange a refresh token",
    responses=errors(401),
)
def refresh(
    body: RefreshRequest, services: ServicesDep, sessions: SessionServiceDep, address: AddressDep
) -> TokenResponse:
    """A new access and refresh token for a refresh token, which is spent.

    A refresh token works once. Presenting a spent one again means it was copied:
    its whole family (every token of that sign-in) is revoked.
    """
    claims = services.tokens.verify(body.refresh_token, "refresh")
    user = sessions.spend_refresh_token(claims, address)
    return _tokens(services, user.username, claims.family)


@router.post(
    "/auth/logout",
    status_code=204,
    response_class=Response,
    summary="Sign out: revoke this access token and every token of its sign-in",
)
def logout(claims: AccessClaimsDep, sessions: SessionServiceDep, address: AddressDep) -> Response:
    sessions.sign_out(claims, address)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    user = services.catalog.organisation.get_user(principal.username)
    assert user is not None
    return Me(
        username=user.username,
        display_name=user.display_name,
        department=user.department,
        ministry=user.ministry,
        roles=list(user.roles),
    )
