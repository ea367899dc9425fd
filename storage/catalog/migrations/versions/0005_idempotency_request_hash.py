"""idempotency keys: remember which upload a key answered (its fingerprint)

A retry with the same `Idempotency-Key` is replayed only if it is the same
upload; keys recorded before this revision have an empty fingerprint.

Revision ID: 0005_idempotency
Revises: 0004_policies
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_idempotency"
down_revision: str | None = "0004_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, as in 0004: no table copy.
    op.add_column(
        "idempotency_keys",
        sa.Column("request_hash", sa.String(length=64), server_default="", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("request_hash")
