"""What every SQL repository shares: where its transactions come from.

A repository made by `SqlCatalog` runs each method in its own short transaction
(reads and writes that stand alone). One made by a `SqlUnitOfWork` runs every
method in the unit of work's session: nothing is committed until the unit of
work commits, and everything is rolled back if it does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        if self._bound is not None:
            yield self._bound
            self._bound.flush()
            return
        with self._db.session(write) as s:
            yield s

    @contextmanager
    def _read(self, *, single_statement: bool = False) -> Iterator[Connection]:
        if self._bound is not None:
            yield self._bound.connection()
            return
        with self._db.read(single_statement=single_statement) as conn:
            yield conn
