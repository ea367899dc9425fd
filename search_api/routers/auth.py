"""/auth/token, /auth/refresh, /auth/logout, /auth/password and /me.

Sign-in: a wrong name or password answers 401 `invalid_credentials` alike; only
after the right password is a disabled (or deleted) user told so (401
`account_disabled`), so a name's existence is never revealed. A user whose
password was reset gets tokens with `password_change_required: true` that serve
only `/me`, `/auth/password`, `/auth/refresh` and `/auth/logout`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from auth.errors import InvalidCredentialsError
from search_api.audit_writer import Auditor
from search_api.deps import (
    AccessClaimsDep,
    AccountServiceDep,
    AddressDep,
    AuditorDep,
    ServicesDep,
    SessionServiceDep,
    SignedInUserDep,
    enforce_rate,
)
from search_api.errors import ApiError
from search_api.openapi import errors
from search_api.schemas import Me, PasswordChangeIn, RefreshRequest, TokenResponse
from services.accounts import failure_key
from services.errors import WrongPasswordError
from storage.catalog.records import UserRecord

router = APIRouter(tags=["auth"])


ACCOUNT_DISABLED = (
    "사용이 중지된 계정입니다. 관리자에게 문의하십시오 · "
    "this account is disabled; ask your administrator"
)


def _tokens(services: ServicesDep, user: UserRecord, family: str | None = None) -> TokenResponse:
    access, refresh = services.tokens.issue_pair(user.username, family)
    return TokenResponse(
        access_token=access.token,
        expires_in=int(services.tokens.access_ttl.total_seconds()),
        refresh_token=refresh.token,
        password_change_required=user.must_change_password,
    )


def _check_address_rate(
    services: ServicesDep, auditor: Auditor, username: str, address: str
) -> None:
    enforce_rate(
        services,
        auditor,
        [(services.rate_rules.sign_in_per_address, f"address:{address}")],
        actor=username,
        address=address,
        target=username,
    )


def _check_failures(
    services: ServicesDep,
    auditor: Auditor,
    username: str,
    user: UserRecord | None,
    address: str,
    action: str = "sign_in",
) -> None:
    failures = services.rate_rules.sign_in_failures_per_user
    if failures is None:
        return
    # Failed attempts for one username count from every address together, so a
    # password guesser spread over many addresses is still slowed down. The key
    # changes with the password (`failure_key`): a reset lifts a lockout.
    decision = services.limiter.check(failure_key(failures, username, user), failures)
    if not decision.allowed:
        auditor.record_later(
            Auditor.event(username, action, username, address, "denied", {"reason": "throttled"})
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
    _check_address_rate(services, auditor, username, address)
    user = await run_in_threadpool(services.catalog.organisation.get_user, username)
    _check_failures(services, auditor, username, user, address)
    # Argon2 verification is deliberately slow: keep it off the event loop.
    valid = await run_in_threadpool(
        services.passwords.verify, user.password_hash if user else None, form.password
    )
    if user is None or not valid:
        reason = "unknown_user" if user is None else "wrong_password"
        _charge_failure(services, username, user)
        await run_in_threadpool(
            auditor.record,
            Auditor.event(username, "sign_in", username, address, "denied", {"reason": reason}),
        )
        raise InvalidCredentialsError("sign-in failed")
    if user.disabled:
        # Only now, after the right password: telling it earlier would reveal which
        # names exist (and is no failed guess, so it does not count towards a lockout).
        reason = "deleted" if user.deleted else "disabled"
        await run_in_threadpool(
            auditor.record,
            Auditor.event(username, "sign_in", username, address, "denied", {"reason": reason}),
        )
        raise ApiError(401, "account_disabled", ACCOUNT_DISABLED, {"WWW-Authenticate": "Bearer"})
    detail = {"password_change_required": True} if user.must_change_password else None
    await run_in_threadpool(
        auditor.record, Auditor.event(username, "sign_in", username, address, detail=detail)
    )
    return _tokens(services, user)


def _charge_failure(services: ServicesDep, username: str, user: UserRecord | None) -> None:
    failures = services.rate_rules.sign_in_failures_per_user
    if failures is not None:
        services.limiter.consume(failure_key(failures, username, user), failures)


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
    return _tokens(services, user, claims.family)


@router.post(
    "/auth/logout",
    status_code=204,
    response_class=Response,
    summary="Sign out: revoke this access token and every token of its sign-in",
)
def logout(claims: AccessClaimsDep, sessions: SessionServiceDep, address: AddressDep) -> Response:
    sessions.sign_out(claims, address)
    return Response(status_code=204)


@router.post(
    "/auth/password",
    response_model=TokenResponse,
    summary="Change your own password (signs you out everywhere; new tokens returned)",
    responses={**errors(401, 422), 429: {"description": "too many failed attempts"}},
)
def change_password(
    body: PasswordChangeIn,
    user: SignedInUserDep,
    services: ServicesDep,
    accounts: AccountServiceDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> TokenResponse:
    """Needs the current password; the new one follows the policy of user creation.
    Every token of the user is revoked (other sessions end) and a new pair is
    returned. Clears a required change after a reset. A wrong current password
    (422 `wrong_current_password`) counts as a failed sign-in."""
    full = services.catalog.organisation.get_user(user.username)
    _check_failures(services, auditor, user.username, full, address, "password_change")
    try:
        changed = accounts.change_password(
            user.username, body.current_password, body.new_password, address
        )
    except WrongPasswordError:
        _charge_failure(services, user.username, full)
        raise
    return _tokens(services, changed)


@router.get("/me", response_model=Me)
def me(user: SignedInUserDep) -> Me:
    return Me(
        username=user.username,
        display_name=user.display_name,
        department=user.department,
        ministry=user.ministry,
        roles=list(user.roles),
        password_change_required=user.must_change_password,
    )
