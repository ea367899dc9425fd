"""The catalog's database: the engine, its SQLite settings, migrations, health, and the
short transactions every SQL repository runs in.

Transactions are short and explicit. On SQLite, write transactions start with
`BEGIN IMMEDIATE` (one writer at a time, no lock upgrades that fail mid-way) and
the database runs in WAL mode with `synchronous=FULL`, so a committed upload
survives a power cut. On PostgreSQL, the outbox is claimed with `SKIP LOCKED`
and the audit chain head is locked `FOR UPDATE`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.errors import ConflictError, StorageFullError, StorageUnavailableError

#: Execution option: this connection's transaction writes (SQLite: `BEGIN IMMEDIATE`).
WRITE = "crossdoc_write"
#: Execution option: one statement, its own transaction (SQLite: no BEGIN sent).
SINGLE_READ = "crossdoc_single_read"
#: Ids per `IN (…)` list: SQLite allows 32,766 bound variables per statement.
IN_CHUNK = 10_000

_SQLITE_MMAP_BYTES = 256 << 20
_SQLITE_CACHE_KIB = 16 * 1024
#: PostgreSQL's SQLSTATE for "disk full".
_PG_DISK_FULL = "53100"


def table(model: type[m.Base]) -> Table:
    """The Core table of an ORM model (typed), for bulk statements and row reads."""
    return cast(Table, model.__table__)


def now() -> datetime:
    return datetime.now(UTC)


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (0 when the driver does not say)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below issues
        # BEGIN itself, so that write transactions can be IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Reads (every search re-checks its page of hits) go through a memory
        # map of the file instead of a read() per page, and keep a larger
        # private cache of hot pages; with a million documents the file is
        # hundreds of MB and the default 2 MB cache misses on most lookups.
        cursor.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(SINGLE_READ, False):
            return  # autocommit: the statement is its own transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE, False) else "BEGIN")


def unavailable(err: sa_exc.OperationalError) -> StorageUnavailableError:
    """Our error for a database that cannot do the work now; a full disk is told apart,
    so that the caller can say so (SQLite: SQLITE_FULL, "database or disk is full")."""
    orig = err.orig
    full = (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(orig)
        or getattr(orig, "sqlstate", None) == _PG_DISK_FULL
        or getattr(orig, "pgcode", None) == _PG_DISK_FULL
    )
    if full:
        return StorageFullError(f"catalog storage is full: {orig}")
    return StorageUnavailableError(f"catalog unavailable: {orig}")


def our_error(err: BaseException) -> BaseException | None:
    """Our error type for a SQLAlchemy error (None for any other exception)."""
    if isinstance(err, sa_exc.IntegrityError):
        return ConflictError(str(err.orig))
    if isinstance(err, sa_exc.OperationalError):
        return unavailable(err)
    return None


class Database:
    """The engine of the catalog database (SQLite file or PostgreSQL URL)."""

    def __init__(self, url: str, *, echo: bool = False, replicate: bool = False) -> None:
        self.url = url
        #: Queue every new version for the replica in the transaction that records
        #: it (a replica in `async` mode; `storage.catalog.replication`).
        self.replicate = replicate
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """An ORM session in one transaction, committed when the block ends.

        Raises ConflictError (a constraint refused the change),
        StorageFullError or StorageUnavailableError.
        """
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(**{WRITE: True})
                with conn.begin(), Session(bind=conn, expire_on_commit=False) as session:
                    yield session
                    session.flush()
        except sa_exc.IntegrityError as err:
            raise ConflictError(str(err.orig)) from err
        except sa_exc.OperationalError as err:
            raise unavailable(err) from err

    @contextmanager
    def read(self, *, single_statement: bool = False) -> Iterator[Connection]:
        """A Core connection in one read transaction (a consistent snapshot), for the
        per-request read paths where an ORM session is pure overhead.

        With `single_statement`, SQLite is not sent a BEGIN: one statement reads
        one snapshot anyway, and the round trip is saved.
        """
        try:
            with self.engine.connect() as conn:
                if single_statement:
                    conn = conn.execution_options(**{SINGLE_READ: True})
                with conn.begin():
                    yield conn
        except sa_exc.OperationalError as err:
            raise unavailable(err) from err

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from storage.catalog.migrate import upgrade_to_head

        upgrade_to_head(self.engine)

    def ping(self) -> None:
        """Raises StorageUnavailableError if the database does not answer."""
        with self.session() as s:
            s.execute(select(1))

    def close(self) -> None:
        self.engine.dispose()
