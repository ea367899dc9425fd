"""Who last opened or changed which document: `recent_documents`, written by the
audit log's append (the read or change and this row commit together), read by
`/me/recent` (`views.SqlDocumentViews.recent`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from storage.catalog import models as m
from storage.catalog.sql.database import table

#: Audit actions that open a document (`read`: its metadata, versions or access;
#: `download`: its bytes) or change it.
RECENT_ACTIONS = frozenset(
    {"read", "download", "upload", "new_version", "update_metadata", "acl_change", "restore"}
)
_DOCUMENT_ID = re.compile(r"^[0-9a-f]{32}$")
_RECENT = table(m.RecentDocument)


def remember_recent(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert the recent row of each successful document read or change among the
    audit `rows` about to be committed (the newest time wins), in their transaction."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if (
            row["action"] in RECENT_ACTIONS
            and row["outcome"] == "ok"
            and row["actor"]
            and _DOCUMENT_ID.match(row["target"])
        ):
            key = (row["actor"], row["target"])
            # One row a key per statement (PostgreSQL refuses to update a row twice).
            newest[key] = {
                "username": row["actor"],
                "document_id": row["target"],
                "at": row["at"],
                "action": row["action"],
            }
    if not newest:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_RECENT)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_RECENT.c.username, _RECENT.c.document_id],
        set_={"at": stmt.excluded.at, "action": stmt.excluded.action},
    )
    conn.execute(stmt, list(newest.values()))
