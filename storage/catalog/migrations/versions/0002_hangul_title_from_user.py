"""documents.title_from_user: whether the uploader typed the title

Revision ID: 0002_hangul
Revises: 0001
Create Date: 2026-11-24 21:40:00

An automatic title (the file name) is replaced at indexing time by the title
found in the file's metadata; a typed one never is. Existing documents whose
title differs from their file name were given a title by their uploader.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002_hangul"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would copy and drop the documents table,
    # which the other tables' foreign keys forbid once there are rows.
    op.add_column(
        "documents",
        sa.Column("title_from_user", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    documents = sa.table(
        "documents",
        sa.column("title", sa.String),
        sa.column("filename", sa.String),
        sa.column("title_from_user", sa.Boolean),
    )
    op.execute(
        documents.update()
        .where(documents.c.title != documents.c.filename)
        .values(title_from_user=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("title_from_user")
