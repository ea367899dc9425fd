"""Browser sessions: the API's tokens carried in cookies, and the CSRF check they need.

- `crossdoc_session`: the access token (`HttpOnly`, `SameSite=Lax`, path `/`).
- `crossdoc_refresh`: the refresh token (`HttpOnly`, `SameSite=Lax`), sent only to
  `/session/...` (sign-out, refresh), never with ordinary requests.
- `crossdoc_csrf`: a random token readable by our scripts (double submit). Every
  state-changing request authenticated by the session cookie must repeat it, in the
  `X-CSRF-Token` header (scripts) or the `csrf_token` form field (forms).

All three are `Secure` when the request came over https or the server runs in
production (behind a TLS-terminating proxy, whose headers we do not trust).
This module imports nothing of the web package, so `deps` can use it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from fastapi import Request, Response

from search_api.errors import ApiError

SESSION_COOKIE = "crossdoc_session"
REFRESH_COOKIE = "crossdoc_refresh"
CSRF_COOKIE = "crossdoc_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
REFRESH_PATH = "/session"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_failed() -> ApiError:
    return ApiError(
        403,
        "csrf_failed",
        "요청 확인 토큰이 없거나 맞지 않습니다 · missing or wrong CSRF token; reload the page",
    )


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens; an absent or empty one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def check_csrf_header(request: Request) -> None:
    """For a cookie-authenticated request: unsafe methods must repeat the CSRF cookie."""
    if request.method in SAFE_METHODS:
        return
    if not tokens_match(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)):
        raise csrf_failed()


def cookie_token(request: Request) -> str | None:
    """The access token of the session cookie, CSRF-checked for unsafe methods."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    check_csrf_header(request)
    return token


def is_secure(request: Request, production: bool) -> bool:
    return production or request.url.scheme == "https"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_session_cookies(
    response: Response,
    *,
    access: str,
    refresh: str,
    lifetime: timedelta,
    secure: bool,
) -> str:
    """Set the session's cookies (and a new CSRF token, which is returned)."""
    max_age = int(lifetime.total_seconds())
    # The access cookie outlives its token (the token's own expiry is what counts),
    # so that an expired session is recognised and refreshed instead of looking new.
    response.set_cookie(
        SESSION_COOKIE,
        access,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        refresh,
        max_age=max_age,
        path=REFRESH_PATH,
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    csrf = new_csrf_token()
    set_csrf_cookie(response, csrf, secure=secure)
    return csrf


def set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    # Readable by our scripts (they send it back in a header): not HttpOnly.
    response.set_cookie(CSRF_COOKIE, token, path="/", secure=secure, httponly=False, samesite="lax")


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, httponly=True, samesite="lax"
    )
