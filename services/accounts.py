"""Accounts: changing one's own password, an administrator's reset, unlocking.

Each change and its audit record commit in one unit of work, together with the
revocation of every token the user held (a password change or reset signs the user
out everywhere: a stolen session ends with the password it was opened with).

- **Own change** (`change_password`): needs the current password; the new one
  passes the same policy as at creation and differs from the current one. It
  clears a forced change. A wrong current password counts as a failed sign-in
  (the caller charges the sign-in failure bucket), so a stolen token cannot be
  used to guess the password.
- **Reset** (`reset_password`): by an administrator (or a `dept_admin` within
  their department, the organisation service's scope rule), with a password given
  or a generated one-time password; the user must change it at next sign-in
  (`must_change_password`): until then their tokens serve only to change it.
  `crossdoc users reset-password NAME` resets as the actor `system` (`via: cli`):
  the way back in when the `admin` password is lost. A generated password must be
  changed at next sign-in; one read from standard input was chosen by the operator
  and need not be.
- **Lockout** is the sign-in failure bucket (`RateRules.sign_in_failures_per_user`:
  after N failed sign-ins for one name, from any address, sign-in answers 429 until
  the bucket refills). Its key holds the time the password was last set
  (`failure_key`), so any reset, also one made by the command line in another
  process, lifts it; `unlock` empties it in this process's limiter.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auth.ratelimit import RateLimiter, RateRule
from services.documents import Caller
from services.errors import InvalidChangeError, NotAllowedError, WrongPasswordError
from services.organisation import DEPT_ADMIN_ROLES, NOT_IN_SCOPE, HashPassword
from storage.catalog.ports import CatalogStore
from storage.catalog.records import Revocation, UserRecord, audit_event
from storage.errors import NotFoundError

#: Checks a password against a stored hash (None: no such user; still slow).
VerifyPassword = Callable[[str | None, str], bool]

#: The actor of a reset made at the command line (no signed-in person).
SYSTEM_ACTOR = "system"


def failure_key(rule: RateRule, username: str, user: UserRecord | None) -> str:
    """The sign-in failure bucket of a name: a new password starts a new bucket."""
    epoch = user.password_changed_at.isoformat() if user and user.password_changed_at else ""
    return f"{rule.name}:user:{username}:{epoch}"


def one_time_password() -> str:
    """A generated password (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class ResetResult:
    user: UserRecord
    #: The generated one-time password (None when one was given): shown once.
    password: str | None


class AccountService:
    def __init__(
        self,
        catalog: CatalogStore,
        hash_password: HashPassword,
        verify_password: VerifyPassword,
        token_lifetime: timedelta,
        *,
        limiter: RateLimiter | None = None,
        failures: RateRule | None = None,
    ) -> None:
        """`token_lifetime`: the longest any token lives (how long the revocation of a
        user's tokens must be kept); `limiter` and `failures`: the sign-in failure
        bucket that `unlock` empties (None: no lockout to lift here)."""
        self._catalog = catalog
        self._hash = hash_password
        self._verify = verify_password
        self._token_lifetime = token_lifetime
        self._limiter = limiter
        self._failures = failures

    def change_password(self, username: str, current: str, new: str, address: str) -> UserRecord:
        """Change one's own password (clears a forced change; every token revoked: the
        caller issues new ones after this returns).

        Raises WrongPasswordError (the current password is wrong; audited), the
        password policy's error, InvalidChangeError (the new password is the current
        one), NotFoundError (no such user).
        """
        user = self._catalog.organisation.get_user(username)
        if user is None or user.deleted:
            raise NotFoundError("user not found")
        # Argon2 is slow on purpose: verify and hash before the write transaction.
        if not self._verify(user.password_hash, current):
            self._catalog.audit.append(
                [
                    audit_event(
                        username,
                        "password_change",
                        f"user:{username}",
                        address,
                        "denied",
                        {"reason": "wrong_password"},
                    )
                ]
            )
            raise WrongPasswordError("current password is wrong")
        if new == current:
            raise InvalidChangeError(
                "new_password: 지금과 다른 비밀번호를 고르십시오 · "
                "choose a password different from the current one",
                "same_password",
            )
        hashed = self._hash(new)
        with self._catalog.unit_of_work() as uow:
            record = uow.organisation.update_user(
                username, password_hash=hashed, must_change_password=False
            )
            uow.tokens.revoke([self._user_revocation(username)])
            detail = {"forced": user.must_change_password}
            uow.audit.append(
                [
                    audit_event(
                        username, "password_change", f"user:{username}", address, detail=detail
                    )
                ]
            )
            uow.commit()
        return record

    def reset_password(
        self,
        username: str,
        caller: Caller,
        password: str | None = None,
        *,
        within: str | None = None,
        via: str | None = None,
        must_change: bool = True,
    ) -> ResetResult:
        """Set a user's password (generated when None) and revoke their tokens.

        `within`: the caller is that department's `dept_admin` (see
        `services.organisation`); `via`: how a system reset was made (`cli`), for
        the audit record. Raises NotFoundError, NotAllowedError, the password
        policy's error.
        """
        user = self._catalog.organisation.get_user(username)
        if user is None or user.deleted:
            raise NotFoundError("user not found")
        if within is not None and not (
            user.department == within and set(user.roles) <= DEPT_ADMIN_ROLES
        ):
            self._deny(caller, username, "password_reset", within)
        generated = one_time_password() if password is None else None
        hashed = self._hash(password if password is not None else generated or "")
        with self._catalog.unit_of_work() as uow:
            record = uow.organisation.update_user(
                username, password_hash=hashed, must_change_password=must_change
            )
            uow.tokens.revoke([self._user_revocation(username)])
            detail: dict[str, object] = {
                "generated": generated is not None,
                "must_change_password": must_change,
            }
            if via is not None:
                detail["via"] = via
            uow.audit.append(
                [
                    audit_event(
                        caller.username,
                        "password_reset",
                        f"user:{username}",
                        caller.address,
                        detail=detail,
                    )
                ]
            )
            uow.commit()
        return ResetResult(record, generated)

    def unlock(self, username: str, caller: Caller, *, within: str | None = None) -> bool:
        """Empty the user's sign-in failure bucket; True if it was locked (audited
        either way). Raises NotFoundError, NotAllowedError."""
        user = self._catalog.organisation.get_user(username)
        if user is None or user.deleted:
            raise NotFoundError("user not found")
        if within is not None and not (
            user.department == within and set(user.roles) <= DEPT_ADMIN_ROLES
        ):
            self._deny(caller, username, "unlock", within)
        locked = False
        if self._limiter is not None and self._failures is not None:
            key = failure_key(self._failures, username, user)
            locked = not self._limiter.check(key, self._failures).allowed
            self._limiter.reset(key)
        self._catalog.audit.append(
            [
                audit_event(
                    caller.username,
                    "unlock",
                    f"user:{username}",
                    caller.address,
                    detail={"was_locked": locked},
                )
            ]
        )
        return locked

    def _user_revocation(self, username: str) -> Revocation:
        # Every token of the user issued up to now (the new ones are issued after).
        return Revocation("user", username, datetime.now(UTC) + self._token_lifetime)

    def _deny(self, caller: Caller, username: str, op: str, within: str) -> None:
        self._catalog.audit.append(
            [
                audit_event(
                    caller.username,
                    "denied",
                    f"user:{username}",
                    caller.address,
                    "denied",
                    {"op": op, "within": within},
                )
            ]
        )
        raise NotAllowedError(NOT_IN_SCOPE)
