"""Errors raised by the storage layer. Adapters translate library errors into these."""

import errno


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


class StorageFullError(StorageUnavailableError):
    """The disk or quota under the spool, the object store or the catalog is full.

    Nothing of the operation was kept; it may succeed once space is freed (hence
    a kind of `StorageUnavailableError`: code that retries those retries this).
    """


class NoIntactCopyError(StorageUnavailableError):
    """No site holds an intact copy of a blob the catalog names: missing or corrupt
    on the primary and on the replica (`storage.fallback`). An operational emergency,
    retried like an unavailable store (an operator may bring a copy back)."""


class IdempotencyKeyReusedError(ConflictError):
    """An `Idempotency-Key` already answered a different request, or its document is gone."""


#: The errnos of a full filesystem or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def os_storage_error(err: OSError, what: str) -> StorageUnavailableError:
    """Our error for an OSError of a local write (spool, object store files)."""
    if err.errno in DISK_FULL_ERRNOS:
        return StorageFullError(f"{what}: {err}")
    return StorageUnavailableError(f"{what}: {err}")
