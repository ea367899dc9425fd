"""Errors raised by the auth layer."""


class AuthError(Exception):
    """Base class for authentication and authorisation failures."""


class InvalidTokenError(AuthError):
    """A token is malformed, expired, of the wrong type or not signed by us."""


class InvalidCredentialsError(AuthError):
    """Username or password is wrong, or the user is disabled."""
