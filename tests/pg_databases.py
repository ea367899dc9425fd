"""Throwaway PostgreSQL databases for tests: made on the test server, dropped reliably.

`ThrowawayDatabases` makes each one (empty, migrated to the head, or copied from a
template) and drops them all at the end, so the tests that need a catalog of their
own on PostgreSQL share one way of getting it.

Why dropping needs care: `DROP DATABASE ... WITH (FORCE)` terminates the database's
other sessions, and PostgreSQL checks the dropping role may signal each one. An
autovacuum worker that happens to be on the database belongs to no role, so for a
role that is neither superuser nor in `pg_signal_backend` the drop fails ("must be
a member of the role whose process is being terminated"). `infra/dev/engines`
grants `pg_signal_backend` to its test role; a database named by
CROSSDOC_TEST_DATABASE_URL elsewhere may not have it, so the drop is retried until
the autovacuum worker has gone (seconds on a test database).
"""

from __future__ import annotations

import time
import uuid
from types import TracebackType

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError


def drop_database(admin: Engine, name: str, *, timeout: float = 60.0) -> None:
    """Drop database `name` (if it exists) through `admin`, an AUTOCOMMIT engine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except (ProgrammingError, OperationalError) as err:
            # InsufficientPrivilege (autovacuum on it) or ObjectInUse: both pass.
            retriable = "pg_signal_backend" in str(err) or "being accessed" in str(err)
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class ThrowawayDatabases:
    """Databases made on one PostgreSQL server, each named `<prefix>_<random>`, and
    dropped together by `close` (or at the end of a `with` block), whether the test
    passed or not."""

    def __init__(self, server_url: str | URL, prefix: str) -> None:
        """`server_url`: any database URL on the server, with a role that may create
        databases (CROSSDOC_TEST_DATABASE_URL)."""
        self._server = make_url(server_url)
        self._prefix = prefix
        self._admin = create_engine(self._server, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def new(self, *, migrated: bool = False, template: str | None = None) -> str:
        """The URL of a new database: empty, migrated to the head (`migrated`), or a
        copy of the database named `template` (copying beats migrating many times)."""
        name = f"{self._prefix}_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        self.names.append(name)
        url = self.url_of(name)
        if migrated:
            from storage.catalog.sql import SqlCatalog

            catalog = SqlCatalog(url)
            try:
                catalog.migrate()
            finally:
                catalog.close()  # a template may have no connections when it is copied
        return url

    def url_of(self, name: str) -> str:
        """The URL of database `name` on this server, password included."""
        return self._server.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        """Drop database `name` now (one of ours or one a test adopted)."""
        drop_database(self._admin, name)
        if name in self.names:
            self.names.remove(name)

    def close(self) -> None:
        """Drop every database made here; the first failure is raised after trying all."""
        failure: BaseException | None = None
        try:
            for name in list(self.names):
                try:
                    self.drop(name)
                except Exception as err:  # the others are still dropped
                    failure = failure or err
        finally:
            self._admin.dispose()
        if failure is not None:
            raise failure

    def __enter__(self) -> ThrowawayDatabases:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
