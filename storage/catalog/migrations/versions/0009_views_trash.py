"""documents: who deleted, when purged; recent documents per user

* `documents.deleted_by`: who moved a document to the trash (NULL: deleted before
  this was kept; filled here from the audit log's `delete` records where found).
* `documents.purged_at`: when the trash's retention ended for a deleted document
  (it left the index and the trash for good; its versions and bytes are kept).
* `recent_documents`: per user, the documents they last opened or changed (one
  row a document, newest time kept), written with the audit record of the read
  or change in the same transaction; `/me/recent` reads it newest first.
* `ix_documents_trash`: the deleted, not yet purged documents (the trash, and
  the purge's periodic look for what is due), a small index on every engine.

Revision ID: 0009_views_trash
Revises: 0008_user_accounts
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_views_trash"
down_revision: str | None = "0008_user_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRASH = "deleted_at IS NOT NULL AND purged_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("deleted_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_documents_trash",
        "documents",
        ["deleted_at"],
        sqlite_where=sa.text(_TRASH),
        postgresql_where=sa.text(_TRASH),
    )
    # Who deleted what before this was kept: the newest `delete` record of each.
    op.execute(
        "UPDATE documents SET deleted_by = (SELECT a.actor FROM audit_events a "
        "WHERE a.action = 'delete' AND a.target = documents.id "
        "ORDER BY a.id DESC LIMIT 1) WHERE deleted_at IS NOT NULL"
    )
    op.create_table(
        "recent_documents",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.String(32), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
    )
    op.create_index("ix_recent_documents_user_at", "recent_documents", ["username", "at"])


def downgrade() -> None:
    op.drop_index("ix_recent_documents_user_at", table_name="recent_documents")
    op.drop_table("recent_documents")
    op.drop_index("ix_documents_trash", table_name="documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("purged_at")
        batch.drop_column("deleted_by")
