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
Every token names its family (`fam`): the access and refresh tokens of one
sign-in and of every refresh that follows from it, so that signing out (or a
stolen refresh token used twice) can revoke them together. Revocation itself is
recorded in the catalog and checked by the caller; this module only signs and
verifies.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jose import jwt
from jose.exceptions import JOSEError

from auth.errors import InvalidTokenError
from auth.keys import KeyRing, StaticKeyRing

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 4096
#: Tokens verified recently, kept so that the next request with the same token
#: skips the library's decoding and HMAC (see `TokenService.verify`).
VERIFIED_CACHE_SIZE = 8192
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenClaims:
    """The verified contents of a token."""

    subject: str
    token_id: str
    token_type: TokenType
    issued_at: datetime
    expires_at: datetime
    family: str


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
    """Issues and verifies tokens signed with the keys of a `KeyRing`.

    Tokens are signed with the ring's current key and name it in their `kid`
    header; they are verified with whichever key their `kid` names, as long as
    the ring still knows it. Rotating keys is the ring's business.
    """

    def __init__(
        self,
        keys: KeyRing | Mapping[str, str],
        active_kid: str | None = None,
        *,
        issuer: str = "crossdoc",
        audience: str = "crossdoc-api",
        access_ttl: timedelta = timedelta(minutes=15),
        refresh_ttl: timedelta = timedelta(hours=12),
    ) -> None:
        if isinstance(keys, Mapping):
            if active_kid is None:
                raise ValueError("name the active key id")
            keys = StaticKeyRing(keys, active_kid)
        self.keys: KeyRing = keys
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        # token -> (the key that verified it, its claims); least recently used first.
        self._verified: OrderedDict[str, tuple[str, TokenClaims]] = OrderedDict()
        self._verified_lock = threading.Lock()

    @property
    def max_lifetime(self) -> timedelta:
        """The longest any token lives (how long a revocation must be remembered)."""
        return max(self.access_ttl, self.refresh_ttl)

    def issue(
        self,
        subject: str,
        token_type: TokenType,
        now: datetime | None = None,
        *,
        family: str | None = None,
    ) -> IssuedToken:
        now = now or datetime.now(UTC)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl  # noqa: S105
        token_id = uuid.uuid4().hex
        claims = TokenClaims(
            subject=subject,
            token_id=token_id,
            token_type=token_type,
            issued_at=now,
            expires_at=now + ttl,
            family=family or token_id,
        )
        payload = {
            "sub": subject,
            "jti": claims.token_id,
            "fam": claims.family,
            "typ": token_type,
            # Microseconds (RFC 7519 allows a non-integer NumericDate): a
            # revocation of "every token issued until now" must not catch a
            # token issued in the same second but after it.
            "iat": round(now.timestamp(), 6),
            "nbf": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
        }
        kid, secret = self.keys.signing_key()
        token = jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedToken(token=token, claims=claims)

    def issue_pair(
        self, subject: str, family: str | None = None, now: datetime | None = None
    ) -> tuple[IssuedToken, IssuedToken]:
        """An access and a refresh token of one family (a new family unless one is given)."""
        family = family or uuid.uuid4().hex
        return (
            self.issue(subject, "access", now, family=family),
            self.issue(subject, "refresh", now, family=family),
        )

    def verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        """Verify a token and return its claims, or raise `InvalidTokenError`.

        Checks signature, algorithm, key, lifetime, audience, issuer and type;
        not revocation (the catalog's business).

        A token verified before is not decoded again while it is unexpired and
        the key its `kid` names is still the very key that verified it: the
        bytes that passed the signature check then pass it now. A dropped or
        replaced key, expiry and the type are checked on every call.
        """
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("token missing or too large")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidTokenError("not a signed token")
        header = _b64url_json(parts[0])
        if header.get("alg") != ALGORITHM or set(header) - {"alg", "kid", "typ"}:
            raise InvalidTokenError("unexpected token header")
        kid = header.get("kid")
        secret = self.keys.verification_key(kid) if isinstance(kid, str) else None
        if secret is None:
            raise InvalidTokenError("unknown signing key")
        with self._verified_lock:
            cached = self._verified.get(token)
            if cached is not None:
                self._verified.move_to_end(token)
        if cached is not None:
            verified_with, claims = cached
            # Once expired, it goes back to the library, which refuses it.
            if verified_with == secret and time.time() <= claims.expires_at.timestamp():
                if claims.token_type != expected_type:
                    raise InvalidTokenError("wrong token type")
                return claims
        claims = self._decode(token, secret, expected_type)
        with self._verified_lock:
            self._verified[token] = (secret, claims)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str, secret: str, expected_type: TokenType) -> TokenClaims:
        """The claims of a token, verified by the library with `secret`."""
        try:
            payload = jwt.decode(
                token,
                secret,
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
        subject, token_id, family = payload.get("sub"), payload.get("jti"), payload.get("fam")
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("token rejected")
        if not isinstance(token_id, str) or not 0 < len(token_id) <= 64:
            raise InvalidTokenError("token rejected")
        if not isinstance(family, str) or not 0 < len(family) <= 64:
            raise InvalidTokenError("token rejected")
        try:
            issued_at = datetime.fromtimestamp(float(payload["iat"]), UTC)
            expires_at = datetime.fromtimestamp(int(payload["exp"]), UTC)
        except (TypeError, ValueError, OverflowError, OSError) as err:
            raise InvalidTokenError("token rejected") from err
        return TokenClaims(
            subject=subject,
            token_id=token_id,
            token_type=expected_type,
            issued_at=issued_at,
            expires_at=expires_at,
            family=family,
        )
