"""policies: generations and fan-out of policy changes, access-only outbox rows

Revision ID: 0004_policies
Revises: 0003_audit
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_policies"
down_revision: str | None = "0003_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN and CREATE INDEX: batch mode would copy and drop the
    # tables, which the foreign keys to documents forbid once there are rows.
    op.add_column(
        "documents",
        sa.Column("policy_revision", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_documents_policy_stale",
        "documents",
        ["id"],
        unique=False,
        sqlite_where=sa.text("indexed_revision < policy_revision"),
        postgresql_where=sa.text("indexed_revision < policy_revision"),
    )
    op.add_column(
        "outbox",
        sa.Column("access_only", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("policies", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "policies",
        sa.Column("updated_by", sa.String(length=64), server_default="", nullable=False),
    )
    op.add_column(
        "policies", sa.Column("generation", sa.Integer(), server_default="1", nullable=False)
    )
    op.create_table(
        "policy_fanouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("policy_fanouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_fanouts_pending",
            ["policy_id"],
            unique=False,
            sqlite_where=sa.text("done_at IS NULL"),
            postgresql_where=sa.text("done_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("policy_fanouts", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_fanouts_pending")
    op.drop_table("policy_fanouts")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_column("generation")
        batch_op.drop_column("updated_by")
        batch_op.drop_column("updated_at")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("access_only")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_policy_stale")
        batch_op.drop_column("policy_revision")
