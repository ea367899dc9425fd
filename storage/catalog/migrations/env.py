"""Alembic environment: migrations run on the connection handed over by `migrate.py`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic` on the command line, with -x url=…
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///… upgrade head")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
