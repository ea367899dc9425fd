"""Errors the services raise beyond the storage and auth ones."""

from __future__ import annotations


class InvalidChangeError(ValueError):
    """A change names something that does not exist (a department, a ministry, a
    principal) or is otherwise invalid (an expiry in the past); nothing was written.
    The message starts with the field at fault, e.g. ``department: no department D9``;
    `code` is the error code the API answers with (422)."""

    def __init__(self, message: str, code: str = "validation_error") -> None:
        super().__init__(message)
        self.code = code


class NotAllowedError(PermissionError):
    """The caller may not make this change (e.g. a `dept_admin` on another
    department's member); nothing was written, the refusal is audited (403)."""


class InUseError(Exception):
    """A ministry or department cannot retire while something still refers to it;
    the message says what to move first (409)."""


class WrongPasswordError(ValueError):
    """The current password given to change one's own password is wrong (nothing
    changed; the attempt counts as a failed sign-in)."""
