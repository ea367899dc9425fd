"""Token revocations, and the token check of every authenticated request (SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, select

from storage.catalog import models as m
from storage.catalog.records import Revocation, UserRecord
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import rowcount, table
from storage.errors import ConflictError

#: How long a disabled user's "tokens issued before now" revocation is kept: longer
#: than any token lifetime the settings allow (refresh tokens: at most 30 days).
USER_REVOCATION_KEPT = timedelta(days=31)

_USERS = table(m.User)
_DEPARTMENTS = table(m.Department)
_REVOCATIONS = table(m.TokenRevocation)
# Statements of the per-request read path, built once: lean columns, Core rows.
# The revocation rows that may concern a token: its jti, its family, its user.
_TOKEN_REVOCATION_ROWS = (
    ((_REVOCATIONS.c.kind == "jti") & (_REVOCATIONS.c.value == bindparam("jti")))
    | ((_REVOCATIONS.c.kind == "family") & (_REVOCATIONS.c.value == bindparam("family")))
    | ((_REVOCATIONS.c.kind == "user") & (_REVOCATIONS.c.value == bindparam("username")))
)
# Whether one of them refuses it: a user row only for tokens issued up to its
# time (`_revoked` says the same in Python).
_TOKEN_REVOKED = exists().where(
    _TOKEN_REVOCATION_ROWS
    & (
        (_REVOCATIONS.c.kind != "user")
        | (_REVOCATIONS.c.revoked_at >= bindparam("issued_at", type_=m.UTCDateTime()))
    )
)
_TOKEN_HOLDER = (
    select(
        _USERS.c.username,
        _USERS.c.display_name,
        _USERS.c.department_code,
        _DEPARTMENTS.c.ministry_code,
        _USERS.c.roles,
        _USERS.c.disabled,
        _USERS.c.must_change_password,
        _TOKEN_REVOKED.label("revoked"),
    )
    .select_from(_USERS.outerjoin(_DEPARTMENTS, _DEPARTMENTS.c.code == _USERS.c.department_code))
    .where(_USERS.c.username == bindparam("username"))
)
_TOKEN_REVOCATIONS = select(_REVOCATIONS.c.kind, _REVOCATIONS.c.revoked_at).where(
    _TOKEN_REVOCATION_ROWS
)


def _revoked(rows: Sequence[Any], issued_at: datetime) -> bool:
    """Whether revocation rows (kind, revoked_at) refuse a token issued at `issued_at`:
    a jti or family row always does; a user row, for tokens issued up to its time."""
    return any(kind != "user" or issued_at <= revoked_at for kind, revoked_at in rows)


class SqlTokenRevocations(SqlRepository):
    """`ports.TokenRevocations` over SQL."""

    def holder(
        self, username: str, token_id: str, family: str, issued_at: datetime
    ) -> UserRecord | None:
        """The user a token speaks for, read with its revocations in one statement:
        None when the token, its family or (up to its issue time) the user's tokens
        are revoked, or the user is unknown. The password hash is not read."""
        with self._read(single_statement=True) as conn:
            row = conn.execute(
                _TOKEN_HOLDER,
                {"username": username, "jti": token_id, "family": family, "issued_at": issued_at},
            ).first()
        if row is None or row.revoked:
            return None
        return UserRecord(
            username=row.username,
            display_name=row.display_name,
            department=row.department_code,
            ministry=row.ministry_code,
            roles=tuple(row.roles),
            disabled=row.disabled,
            must_change_password=row.must_change_password,
        )

    def revoke(self, entries: Sequence[Revocation], *, fail_if_revoked: bool = False) -> None:
        """Record revocations.

        With `fail_if_revoked`, an entry already present raises `ConflictError`
        and nothing is recorded (used to spend a refresh token exactly once).
        Expired revocations are pruned in the same transaction.
        """
        now = _now()
        with self._session(write=True) as s:
            s.execute(delete(m.TokenRevocation).where(m.TokenRevocation.expires_at <= now))
            for entry in entries:
                existing = s.get(m.TokenRevocation, (entry.kind, entry.value))
                if existing is not None:
                    if fail_if_revoked:
                        raise ConflictError(f"{entry.kind} {entry.value} already revoked")
                    existing.revoked_at = now
                    existing.expires_at = max(existing.expires_at, entry.expires_at)
                else:
                    s.add(
                        m.TokenRevocation(
                            kind=entry.kind,
                            value=entry.value,
                            revoked_at=now,
                            expires_at=entry.expires_at,
                        )
                    )

    def is_revoked(
        self, token_id: str | None, family: str, username: str, issued_at: datetime
    ) -> bool:
        """Whether this token (unless None), its family, or the user's tokens up to its
        issue time are revoked."""
        with self._read() as conn:
            rows = conn.execute(
                _TOKEN_REVOCATIONS,
                # No jti is ever the empty string, so "" matches no jti row.
                {"jti": token_id or "", "family": family, "username": username},
            ).all()
        return _revoked(rows, issued_at)

    def prune(self) -> int:
        """Remove revocations past their expiry; returns how many."""
        with self._session(write=True) as s:
            result = s.execute(
                delete(m.TokenRevocation).where(m.TokenRevocation.expires_at <= _now())
            )
            return rowcount(result)
