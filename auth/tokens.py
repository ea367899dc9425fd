"""Signed access and refresh tokens (JWT, via python-jose with the cryptography backend).

This is the only module that imports `jose`. Hardening, in order:
- a size cap and a structural check before anything is decoded: a compact JWS has
  exactly three parts; JWE (five parts, CVE-2024-33664 "compressed JWE" bombs) and
  anything else is refused without being parsed by the library;
- the header's `alg` must be the pinned algorithm and its `kid` a known key; the
  library is also given only that algorithm (no `none`, no HMAC-with-a-public-key
  confusion, CVE-2024-33663);
- `exp`, `iat`, `sub`, `jti` and `typ` are required; `aud` and `iss` are checked;
- the token type is checked, so a refresh token is never accepted as an access token.

Tokens carry identity only; roles and department come from the catalog per request.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jose import jwt
from jose.exceptions import JOSEError

from auth.errors import InvalidTokenError

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 4096
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenClaims:
    """The verified contents of a token."""

    subject: str
    token_id: str
    token_type: TokenType
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: TokenClaims


def generate_secret() -> str:
    """A fresh random signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


def _b64url_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as err:
        raise InvalidTokenError("malformed token") from err
    if not isinstance(value, dict):
        raise InvalidTokenError("malformed token")
    return value


class TokenService:
    """Issues and verifies tokens signed with a ring of HMAC keys.

    `keys` maps key ids to secrets; tokens are signed with `active_kid` and
    verified with whichever key their `kid` names, so a key can be rotated by
    adding a new one, making it active, and removing the old one after the
    longest token lifetime.
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        active_kid: str,
        *,
        issuer: str = "crossdoc",
        audience: str = "crossdoc-api",
        access_ttl: timedelta = timedelta(minutes=30),
        refresh_ttl: timedelta = timedelta(hours=12),
    ) -> None:
        if active_kid not in keys:
            raise ValueError("the active key id must be one of the keys")
        if any(len(secret) < 32 for secret in keys.values()):
            raise ValueError("signing secrets must be at least 32 characters")
        self._keys = dict(keys)
        self._active_kid = active_kid
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def issue(
        self, subject: str, token_type: TokenType, now: datetime | None = None
    ) -> IssuedToken:
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl  # noqa: S105
        claims = TokenClaims(
            subject=subject,
            token_id=uuid.uuid4().hex,
            token_type=token_type,
            issued_at=now,
            expires_at=now + ttl,
        )
        payload = {
            "sub": subject,
            "jti": claims.token_id,
            "typ": token_type,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
        }
        token = jwt.encode(
            payload,
            self._keys[self._active_kid],
            algorithm=ALGORITHM,
            headers={"kid": self._active_kid},
        )
        return IssuedToken(token=token, claims=claims)

    def verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        """Verify a token and return its claims, or raise `InvalidTokenError`."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("token missing or too large")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidTokenError("not a signed token")
        header = _b64url_json(parts[0])
        if header.get("alg") != ALGORITHM or set(header) - {"alg", "kid", "typ"}:
            raise InvalidTokenError("unexpected token header")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise InvalidTokenError("unknown signing key")
        try:
            payload = jwt.decode(
                token,
                self._keys[kid],
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_jti": True,
                    "require_aud": True,
                    "require_iss": True,
                    "leeway": 0,
                },
            )
        except JOSEError as err:
            raise InvalidTokenError("token rejected") from err
        if payload.get("typ") != expected_type:
            raise InvalidTokenError("wrong token type")
        subject, token_id = payload.get("sub"), payload.get("jti")
        if not isinstance(subject, str) or not subject or not isinstance(token_id, str):
            raise InvalidTokenError("token rejected")
        return TokenClaims(
            subject=subject,
            token_id=token_id,
            token_type=expected_type,
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
