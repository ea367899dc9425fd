"""/auth/token, /auth/refresh and /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from auth.errors import InvalidCredentialsError
from search_api.audit import Auditor
from search_api.deps import AddressDep, AuditorDep, PrincipalDep, ServicesDep
from search_api.schemas import Me, RefreshRequest, TokenResponse

router = APIRouter(tags=["auth"])


def _tokens(services: ServicesDep, username: str) -> TokenResponse:
    access = services.tokens.issue(username, "access")
    refresh = services.tokens.issue(username, "refresh")
    return TokenResponse(
        access_token=access.token,
        expires_in=int(services.tokens.access_ttl.total_seconds()),
        refresh_token=refresh.token,
    )


@router.post("/auth/token", response_model=TokenResponse, summary="Sign in (OAuth2 password flow)")
async def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> TokenResponse:
    username = form.username.strip().lower()[:64]
    user = await run_in_threadpool(services.catalog.get_user, username)
    # Argon2 verification is deliberately slow: keep it off the event loop.
    valid = await run_in_threadpool(
        services.passwords.verify, user.password_hash if user else None, form.password
    )
    if user is None or not valid or user.disabled:
        reason = "disabled" if user is not None and valid else "bad_credentials"
        await run_in_threadpool(
            auditor.record,
            Auditor.event(username, "sign_in", username, address, "denied", {"reason": reason}),
        )
        raise InvalidCredentialsError("sign-in failed")
    await run_in_threadpool(auditor.record, Auditor.event(username, "sign_in", username, address))
    return _tokens(services, username)


@router.post("/auth/refresh", response_model=TokenResponse, summary="Exchange a refresh token")
def refresh(body: RefreshRequest, services: ServicesDep) -> TokenResponse:
    claims = services.tokens.verify(body.refresh_token, "refresh")
    user = services.catalog.get_user(claims.subject)
    if user is None or user.disabled:
        raise InvalidCredentialsError("unknown or disabled user")
    return _tokens(services, user.username)


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    user = services.catalog.get_user(principal.username)
    assert user is not None
    return Me(
        username=user.username,
        display_name=user.display_name,
        department=user.department,
        ministry=user.ministry,
        roles=list(user.roles),
    )
