"""users: forced password change, password set time, soft delete

* `must_change_password`: an administrator's reset sets it; the user's tokens then
  serve only to change the password (`/auth/password`), until they do.
* `password_changed_at`: when the password was last set (NULL: at creation). The
  sign-in failure bucket of a user is keyed with it, so a reset lifts a lockout.
* `deleted_at`: a deleted user is disabled, left out of lists and the directory;
  the row is kept (grants, documents and the audit log name it).

Existing users keep their password and are not forced to change it.

Revision ID: 0008_user_accounts
Revises: 0007_policy_uids
Create Date: 2026-11-30 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_user_accounts"
down_revision: str | None = "0007_policy_uids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(
            sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("password_changed_at")
        batch.drop_column("must_change_password")
