"""Object store port and adapters: the original bytes of every document version."""

from storage.objectstore.base import ObjectStore, StoredBlob, blob_key_for, verify_blob

__all__ = ["ObjectStore", "StoredBlob", "blob_key_for", "verify_blob"]
