"""One write transaction over every repository (`ports.UnitOfWork` over SQL)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, RootTransaction
from sqlalchemy.orm import Session

from storage.catalog.sql.audit import SqlAuditLog
from storage.catalog.sql.database import WRITE, Database, our_error
from storage.catalog.sql.documents import SqlDocuments
from storage.catalog.sql.extractions import SqlExtractions
from storage.catalog.sql.folders import SqlFolders
from storage.catalog.sql.organisation import SqlOrganisation
from storage.catalog.sql.outbox import SqlOutbox
from storage.catalog.sql.policies import SqlPolicies
from storage.catalog.sql.replication import SqlReplication
from storage.catalog.sql.tokens import SqlTokenRevocations

log = logging.getLogger(__name__)


class SqlUnitOfWork:
    """A write transaction (SQLite: `BEGIN IMMEDIATE`) and the repositories bound to it.

    Use once, as a context manager. Nothing is written until `commit()`;
    leaving the block without it rolls everything back. SQL errors leave the
    block as our own: ConflictError, StorageFullError, StorageUnavailableError.
    """

    organisation: SqlOrganisation
    documents: SqlDocuments
    outbox: SqlOutbox
    extractions: SqlExtractions
    audit: SqlAuditLog
    tokens: SqlTokenRevocations
    policies: SqlPolicies
    folders: SqlFolders
    replication: SqlReplication

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._session: Session | None = None
        self._hooks: list[Callable[[], None]] = []
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        if self._conn is not None:
            raise RuntimeError("a unit of work is used once")
        try:
            conn = self._db.engine.connect().execution_options(**{WRITE: True})
            self._conn = conn
            self._tx = conn.begin()
        except Exception as err:
            self._close()
            ours = our_error(err)
            if ours is not None:
                raise ours from err
            raise
        session = Session(bind=self._conn, expire_on_commit=False)
        self._session = session
        db = self._db
        self.organisation = SqlOrganisation(db, session)
        self.documents = SqlDocuments(db, session)
        self.outbox = SqlOutbox(db, session)
        self.extractions = SqlExtractions(db, session)
        self.audit = SqlAuditLog(db, session)
        self.tokens = SqlTokenRevocations(db, session)
        self.policies = SqlPolicies(db, session)
        self.folders = SqlFolders(db, session)
        self.replication = SqlReplication(db, session)
        return self

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (never if it does not)."""
        self._hooks.append(callback)

    def commit(self) -> None:
        """Commit every change made through this unit of work, then run the hooks."""
        if self._session is None or self._tx is None or self._committed:
            raise RuntimeError("commit() outside the unit of work, or twice")
        try:
            self._session.flush()
            self._tx.commit()
        except Exception as err:
            ours = our_error(err)
            if ours is not None:
                raise ours from err
            raise
        self._committed = True
        for hook in self._hooks:
            try:
                hook()
            except Exception:
                # The change is durable: a failed notification only delays the
                # work, which the outbox still holds.
                log.exception("after-commit hook failed")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed and self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            self._close()
        if exc is not None:
            ours = our_error(exc)
            if ours is not None:
                raise ours from exc

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
        if self._conn is not None:
            self._conn.close()
