"""Password hashing with Argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class PasswordPolicyError(ValueError):
    """The password does not meet the policy."""


class Passwords:
    """Hashes and verifies passwords; the cost parameters are injectable for tests."""

    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19 * 1024) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
        # A hash to verify against when the user does not exist, so that timing
        # does not reveal which usernames exist.
        self._dummy = self._hasher.hash("crossdoc-dummy-password")

    def hash(self, password: str) -> str:
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise PasswordPolicyError(
                f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            )
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
