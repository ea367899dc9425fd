"""Dropping the throwaway PostgreSQL databases tests make, reliably.

`DROP DATABASE ... WITH (FORCE)` terminates the database's other sessions, and
PostgreSQL checks the dropping role may signal each one. An autovacuum worker that
happens to be on the database belongs to no role, so for a role that is neither
superuser nor in `pg_signal_backend` the drop fails ("must be a member of the role
whose process is being terminated"). `infra/dev/engines` grants `pg_signal_backend`
to its test role; a database named by CROSSDOC_TEST_DATABASE_URL elsewhere may not
have it, so the drop is retried until the autovacuum worker has gone (seconds on a
test database).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
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
