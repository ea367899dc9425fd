"""audit chain head and token revocations

Revision ID: 0003_audit
Revises: 0002_hangul
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003_audit"
down_revision: str | None = "0002_hangul"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Start the head at the chain as it stands.
    op.execute(
        "INSERT INTO audit_chain_head (id, last_id, last_hash, count) "
        "SELECT 1, COALESCE(MAX(id), 0), "
        "COALESCE((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1), "
        "'0000000000000000000000000000000000000000000000000000000000000000'), "
        "COUNT(*) FROM audit_events"
    )
    op.create_table(
        "token_revocations",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value"),
    )
    with op.batch_alter_table("token_revocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_revocations_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("token_revocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_revocations_expires_at"))
    op.drop_table("token_revocations")
    op.drop_table("audit_chain_head")
