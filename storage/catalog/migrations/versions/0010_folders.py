"""folders: each department's folder tree, and the folder a document is filed in

* `folders`: id, department, parent ("" at the top level), name (unique among
  siblings), `path` of ids from the top down (`/a/b/c/`), who made it and when.
* `documents.folder_id`: NULL for documents filed at the department's top level
  (every existing document).

Folders are for finding; access stays on documents.

Revision ID: 0010_folders
Revises: 0008_user_accounts
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_folders"
down_revision: str | None = "0009_views_trash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("department", sa.String(64), sa.ForeignKey("departments.code"), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("department", "parent_id", "name"),
    )
    op.create_index("ix_folders_department", "folders", ["department"])
    op.create_index("ix_folders_path", "folders", ["path"])
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("folder_id", sa.String(32), nullable=True))
        batch.create_index("ix_documents_folder_id", ["folder_id"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_folder_id")
        batch.drop_column("folder_id")
    op.drop_index("ix_folders_path", "folders")
    op.drop_index("ix_folders_department", "folders")
    op.drop_table("folders")
