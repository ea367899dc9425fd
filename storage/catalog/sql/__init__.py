"""The catalog over SQL (SQLite embedded, PostgreSQL scale-out): one module per
repository, `unit_of_work.py` for changes that commit together, `database.py`
for the engine.
"""

from __future__ import annotations

from storage.catalog.sql.audit import SqlAuditLog
from storage.catalog.sql.database import Database
from storage.catalog.sql.documents import SqlDocuments
from storage.catalog.sql.extractions import SqlExtractions
from storage.catalog.sql.folders import SqlFolders
from storage.catalog.sql.organisation import SqlOrganisation
from storage.catalog.sql.outbox import SqlOutbox
from storage.catalog.sql.policies import SqlPolicies
from storage.catalog.sql.replication import SqlReplication
from storage.catalog.sql.tokens import SqlTokenRevocations
from storage.catalog.sql.unit_of_work import SqlUnitOfWork


class SqlCatalog:
    """Every catalog repository over one database (`ports.CatalogStore`).

    Each repository method here is its own short transaction; `unit_of_work()`
    gives the same repositories over one transaction that commits as a whole.
    """

    def __init__(self, url: str, *, echo: bool = False, replicate: bool = False) -> None:
        # `replicate`: new versions are queued for the replica (async replication).
        self.database = Database(url, echo=echo, replicate=replicate)
        self.url = url
        self.is_sqlite = self.database.is_sqlite
        self.engine = self.database.engine
        self.organisation = SqlOrganisation(self.database)
        self.documents = SqlDocuments(self.database)
        self.outbox = SqlOutbox(self.database)
        self.extractions = SqlExtractions(self.database)
        self.audit = SqlAuditLog(self.database)
        self.tokens = SqlTokenRevocations(self.database)
        self.policies = SqlPolicies(self.database)
        self.folders = SqlFolders(self.database)
        self.replication = SqlReplication(self.database)

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new unit of work (enter it with `with`)."""
        return SqlUnitOfWork(self.database)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        self.database.migrate()

    def ping(self) -> None:
        """Raises StorageUnavailableError if the database does not answer."""
        self.database.ping()

    def close(self) -> None:
        self.database.close()


__all__ = ["Database", "SqlCatalog", "SqlUnitOfWork"]
