"""What every SQL repository shares: where its transactions come from.

A repository made by `SqlCatalog` runs each method in its own short transaction
(reads and writes that stand alone). One made by a `SqlUnitOfWork` runs every
method in the unit of work's session: nothing is committed until the unit of
work commits, and everything is rolled back if it does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from storage.catalog.sql.database import Database


class SqlRepository:
    def __init__(self, db: Database, session: Session | None = None) -> None:
        self._db = db
        self._bound = session

    @property
    def is_sqlite(self) -> bool:
        return self._db.is_sqlite

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:
        if self._bound is not None:
            return _in_unit_of_work(self._bound)
        return self._db.session(write)

    def _read(self, *, single_statement: bool = False) -> AbstractContextManager[Connection]:
        if self._bound is not None:
            return _connection_of(self._bound)
        # Not wrapped again: the per-request read paths pay for one context manager.
        return self._db.read(single_statement=single_statement)


@contextmanager
def _in_unit_of_work(session: Session) -> Iterator[Session]:
    yield session
    session.flush()  # errors surface at the statement that caused them


@contextmanager
def _connection_of(session: Session) -> Iterator[Connection]:
    yield session.connection()
