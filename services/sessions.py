"""Sessions: spending a refresh token, and signing out, each with its audit record.

A refresh token works once: spending it records its id as revoked. Presenting a
spent one again means it was copied, so its whole family (every token of that
sign-in) is revoked. Each of these changes commits in one unit of work with the
audit record that tells of it, so a crash cannot keep one without the other.
Verifying the token's signature is the caller's business (`auth.tokens`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auth.errors import InvalidCredentialsError, InvalidTokenError
from auth.tokens import TokenClaims
from storage.catalog.ports import CatalogStore
from storage.catalog.records import Revocation, UserRecord, audit_event
from storage.errors import ConflictError


class SessionService:
    def __init__(self, catalog: CatalogStore, token_lifetime: timedelta) -> None:
        """`token_lifetime`: the longest any token lives (how long a family's
        revocation must be kept)."""
        self._catalog = catalog
        self._token_lifetime = token_lifetime

    def spend_refresh_token(self, claims: TokenClaims, address: str) -> UserRecord:
        """Spend a (verified) refresh token; returns the user to issue new tokens to.

        Raises InvalidTokenError (revoked, or spent before: then its family is
        revoked now) and InvalidCredentialsError (the user is unknown or disabled;
        the token is spent all the same).
        """
        subject = claims.subject
        if self._catalog.tokens.is_revoked(None, claims.family, subject, claims.issued_at):
            raise InvalidTokenError("token revoked")
        spent = Revocation("jti", claims.token_id, claims.expires_at)
        try:
            with self._catalog.unit_of_work() as uow:
                uow.tokens.revoke([spent], fail_if_revoked=True)
                user = uow.organisation.get_user(subject)
                if user is None or user.disabled:
                    reason = "disabled" if user else "unknown_user"
                    detail = {"reason": reason}
                    event = audit_event(
                        subject, "token_refresh", subject, address, "denied", detail
                    )
                else:
                    event = audit_event(subject, "token_refresh", subject, address)
                uow.audit.append([event])
                uow.commit()
        except ConflictError:
            self._revoke_family(claims, address)
            raise InvalidTokenError("refresh token reused") from None
        if user is None or user.disabled:
            raise InvalidCredentialsError("unknown or disabled user")
        return user

    def sign_out(self, claims: TokenClaims, address: str) -> None:
        """Revoke this access token and every token of its sign-in (its family)."""
        until = datetime.now(UTC) + self._token_lifetime
        with self._catalog.unit_of_work() as uow:
            uow.tokens.revoke(
                [
                    Revocation("jti", claims.token_id, claims.expires_at),
                    Revocation("family", claims.family, until),
                ]
            )
            uow.audit.append([audit_event(claims.subject, "sign_out", claims.subject, address)])
            uow.commit()

    def _revoke_family(self, claims: TokenClaims, address: str) -> None:
        until = datetime.now(UTC) + self._token_lifetime
        detail = {"family": claims.family}
        with self._catalog.unit_of_work() as uow:
            uow.tokens.revoke([Revocation("family", claims.family, until)])
            uow.audit.append(
                [
                    audit_event(
                        claims.subject, "token_reuse", claims.subject, address, "denied", detail
                    )
                ]
            )
            uow.commit()
