"""The catalog: organisation, document metadata, versions, ACLs, the outbox and the audit log.

SQLAlchemy over SQLite (embedded) or PostgreSQL (scale-out), migrated with Alembic.
"""

from storage.catalog.repository import Catalog

__all__ = ["Catalog"]
