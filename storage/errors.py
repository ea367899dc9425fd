"""Errors raised by the storage layer. Adapters translate library errors into these."""


class StorageError(Exception):
    """Base class for storage failures."""


class BlobNotFoundError(StorageError):
    """The object store has no blob under the requested key."""


class StorageUnavailableError(StorageError):
    """The object store or catalog cannot be reached now; the operation may be retried."""


class IntegrityError(StorageError):
    """Stored bytes do not match their recorded checksum, or a write could not be verified."""


class ConflictError(StorageError):
    """A unique value (code, username, idempotency key) already exists."""


class NotFoundError(StorageError):
    """A catalog row does not exist."""
