"""An S3 bucket as a whole: is it empty, and emptying it (a restore's target, a drill's scratch).

The object store port (`storage.objectstore.base.ObjectStore`) deals in blobs by
key and never lists or deletes: a deployment's originals are never removed. A
restore needs two things more of the bucket it writes: to refuse one that holds
anything already (it never writes over a deployment), and, for `crossdoc
drill`, to remove again the scratch copies it made. They live here, apart from
the store, so that nothing serving a deployment can reach them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from storage.errors import StorageUnavailableError

__all__ = ["S3Bucket"]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (
        S3Error,
        ServerError,
        InvalidResponseError,
        urllib3.exceptions.HTTPError,
        OSError,
    ) as err:
        raise StorageUnavailableError(f"{what}: {err}") from err


class S3Bucket:
    """One bucket of an S3-compatible server, as a restore target (`endpoint` is `host:port`)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool,
        region: str | None = None,
    ) -> None:
        self.name = bucket
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )

    def exists(self) -> bool:
        """Whether the bucket exists. `StorageUnavailableError`."""
        with _translated(f"cannot reach bucket {self.name}"):
            return bool(self._client.bucket_exists(self.name))

    def is_empty(self) -> bool:
        """Whether the bucket holds no object at all (older versions counted). A
        missing bucket is empty. `StorageUnavailableError`."""
        if not self.exists():
            return True
        with _translated(f"cannot list bucket {self.name}"):
            for _ in self._client.list_objects(self.name, recursive=True, include_version=True):
                return False
        return True

    def remove_all(self, *, remove_bucket: bool) -> int:
        """Delete every object (every version) and, with `remove_bucket`, the bucket.

        Only for a bucket a restore found empty and filled itself (the drill's
        scratch copies). Returns the number of objects deleted.
        `StorageUnavailableError`.
        """
        if not self.exists():
            return 0
        removed = 0
        with _translated(f"cannot empty bucket {self.name}"):
            for obj in self._client.list_objects(self.name, recursive=True, include_version=True):
                if obj.object_name is not None:
                    self._client.remove_object(
                        self.name, obj.object_name, version_id=obj.version_id
                    )
                    removed += 1
            if remove_bucket:
                self._client.remove_bucket(self.name)
        return removed
