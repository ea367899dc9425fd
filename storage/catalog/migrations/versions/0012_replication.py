"""replication queue: stored versions the second site may still lack

Written in the transaction that records each new version (when a replica is
configured in async mode) and removed once the blob is verified on the replica.

Revision ID: 0012_replication
Revises: 0008_user_accounts
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_replication"
down_revision: str | None = "0011_honest_docs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replication_queue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
    )
    op.create_index("ix_replication_queue_blob_key", "replication_queue", ["blob_key"])
    op.create_index("ix_replication_queue_created_at", "replication_queue", ["created_at"])
    op.create_index("ix_replication_queue_available_at", "replication_queue", ["available_at"])


def downgrade() -> None:
    op.drop_table("replication_queue")
