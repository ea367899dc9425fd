"""documents: a stored document without text is `indexed`, not `failed`

A file read as far as it can be that holds no text we may read (image-only or
blank: `empty`, possibly `empty: ocr unavailable: …`; `encrypted`;
`unsupported_format`) is stored, found by title and file name and
downloadable: its status becomes `indexed`, its `status_detail` (why there is
no text) is kept. `failed` stays for files that could not be read
(`parse_error: …`, `limit_exceeded: …`).

No index is added for duplicate uploads: `ix_documents_sha256` already finds
the few documents holding one digest.

Revision ID: 0011_honest_docs
Revises: 0008_user_accounts
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_honest_docs"
down_revision: str | None = "0010_folders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Why a document read as far as it can be has no text (`Extraction.status_detail`):
# "empty", "encrypted", "unsupported_format", or "empty: ocr unavailable: …".


def upgrade() -> None:
    op.execute(
        "UPDATE documents SET status = 'indexed' WHERE status = 'failed'"
        " AND (status_detail IN ('empty', 'encrypted', 'unsupported_format')"
        " OR status_detail LIKE 'empty: %')"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE documents SET status = 'failed' WHERE status = 'indexed'"
        " AND (status_detail IN ('empty', 'encrypted', 'unsupported_format')"
        " OR status_detail LIKE 'empty: %')"
    )
