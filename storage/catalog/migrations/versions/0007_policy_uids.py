"""policies: ids never given out again, index tokens made of a unique uid

A deleted policy's id was handed out again by SQLite (`INTEGER PRIMARY KEY`
without `AUTOINCREMENT` reuses the highest id once it is deleted), generations
restart at 1, and the `policy:ID.GEN` tokens the deleted policy left in the
index then counted for the new one. From here on:

* the policies table is `AUTOINCREMENT` on SQLite, its sequence started above
  every policy id the catalog still mentions (the policies, their fan-outs and
  the audit log, which names every policy ever created); PostgreSQL's sequence
  never goes back anyway;
* every policy gets a random `uid`, and its index token is `policy:UID.GEN`.

No caller holds an old `policy:ID.GEN` token any more, so the tokens of deleted
policies count for no one. The documents of the policies in force are queued
for an access-only re-index (their index entries get the new tokens) and each
policy's fan-out is recorded as pending: until the index has caught up, the
policy's grantees match its documents by the policy's match, as for a new
policy. Nothing becomes readable that was not, nothing readable is lost.

A downgrade drops the uids: run `crossdoc reindex` after it.

Revision ID: 0007_policy_uids
Revises: 0006_outbox_claim_owner
Create Date: 2026-11-29 18:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007_policy_uids"
down_revision: str | None = "0006_outbox_claim_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables as they stand at this revision (not the models, which move on).
_policies = sa.table(
    "policies",
    sa.column("id", sa.Integer()),
    sa.column("uid", sa.String()),
    sa.column("match", sa.JSON()),
    sa.column("generation", sa.Integer()),
)
_docs = sa.table(
    "documents",
    sa.column("id", sa.String()),
    sa.column("ministry", sa.String()),
    sa.column("department", sa.String()),
    sa.column("visibility", sa.String()),
    sa.column("tags", sa.JSON()),
    sa.column("revision", sa.BigInteger()),
    sa.column("policy_revision", sa.BigInteger()),
    sa.column("deleted_at", sa.DateTime()),
)
_outbox = sa.table(
    "outbox",
    sa.column("document_id", sa.String()),
    sa.column("revision", sa.BigInteger()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("available_at", sa.DateTime(timezone=True)),
    sa.column("attempts", sa.Integer()),
    sa.column("last_error", sa.Text()),
    sa.column("access_only", sa.Boolean()),
)
_fanouts = sa.table(
    "policy_fanouts",
    sa.column("policy_id", sa.Integer()),
    sa.column("generation", sa.Integer()),
    sa.column("documents", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("done_at", sa.DateTime(timezone=True)),
)
_audit = sa.table("audit_events", sa.column("target", sa.String()))


def _match_clause(match: dict[str, str], sqlite: bool) -> sa.ColumnElement[bool]:
    """The documents a policy's match selects (the rules of `indexer.access_facts.policy_matches`
    as they stand at this revision: every attribute named matches; an empty match or an
    unknown attribute selects nothing)."""
    if not match:
        return sa.false()
    clauses: list[sa.ColumnElement[bool]] = []
    for key, value in match.items():
        if key in ("ministry", "department", "visibility"):
            clauses.append(_docs.c[key] == value)
        elif key == "tag":
            if sqlite:
                each = sa.func.json_each(_docs.c.tags).table_valued("value")
                clauses.append(
                    sa.exists(sa.select(1).select_from(each).where(each.c.value == value))
                )
            else:
                from sqlalchemy.dialects.postgresql import JSONB

                clauses.append(sa.cast(_docs.c.tags, JSONB).contains([value]))
        else:
            return sa.false()
    return sa.and_(*clauses)


def _highest_policy_id_ever(bind: sa.Connection) -> int:
    """The highest policy id the catalog still mentions, deleted policies included."""
    highest = int(bind.scalar(sa.select(sa.func.max(_policies.c.id))) or 0)
    highest = max(highest, int(bind.scalar(sa.select(sa.func.max(_fanouts.c.policy_id))) or 0))
    targets = bind.scalars(sa.select(_audit.c.target).where(_audit.c.target.like("policy:%")))
    for target in targets:
        number = str(target).removeprefix("policy:")
        if number.isdigit():
            highest = max(highest, int(number))
    return highest


def _fan_out(bind: sa.Connection, policies: Sequence[Any], sqlite: bool) -> None:
    """Queue every document of the policies for an access-only re-index (one statement
    each for the documents and the outbox), and record each policy's fan-out as pending."""
    now = datetime.now(UTC)
    if sqlite:
        now = now.replace(tzinfo=None)  # the catalog keeps naive UTC on SQLite
    live = _docs.c.deleted_at.is_(None)
    matches = {p.id: _match_clause(dict(p.match or {}), sqlite) for p in policies}
    counts = {
        pid: int(bind.scalar(sa.select(sa.func.count()).where(live, clause)) or 0)
        for pid, clause in matches.items()
    }
    where = sa.and_(live, sa.or_(*matches.values()))
    bind.execute(
        sa.update(_docs)
        .where(where)
        .values(revision=_docs.c.revision + 1, policy_revision=_docs.c.revision + 1)
    )
    at = sa.literal(now, sa.DateTime(timezone=True))
    bind.execute(
        sa.insert(_outbox).from_select(
            [
                "document_id",
                "revision",
                "created_at",
                "available_at",
                "attempts",
                "last_error",
                "access_only",
            ],
            sa.select(
                _docs.c.id, _docs.c.revision, at, at, sa.literal(0), sa.literal(""), sa.true()
            ).where(where),
        )
    )
    for p in policies:
        count = counts[p.id]
        bind.execute(
            sa.insert(_fanouts).values(
                policy_id=p.id,
                generation=p.generation,
                documents=count,
                created_at=now,
                done_at=None if count else now,
            )
        )


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column("policies", sa.Column("uid", sa.String(length=32), nullable=True))
    policies = bind.execute(
        sa.select(_policies.c.id, _policies.c.match, _policies.c.generation).order_by(
            _policies.c.id
        )
    ).all()
    for p in policies:
        bind.execute(
            sa.update(_policies).where(_policies.c.id == p.id).values(uid=uuid.uuid4().hex)
        )
    if sqlite:
        highest = _highest_policy_id_ever(bind)
        # SQLite cannot add AUTOINCREMENT in place: the table is copied. Nothing
        # refers to policies by foreign key, so the copy is safe on a full catalog.
        with op.batch_alter_table(
            "policies", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            batch_op.alter_column("uid", existing_type=sa.String(length=32), nullable=False)
            batch_op.create_index("ix_policies_uid", ["uid"], unique=True)
        bind.exec_driver_sql(
            "DELETE FROM sqlite_sequence WHERE name IN ('policies', '_alembic_tmp_policies')"
        )
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('policies', :seq)"),
            {"seq": highest},
        )
    else:
        op.alter_column("policies", "uid", existing_type=sa.String(length=32), nullable=False)
        op.create_index("ix_policies_uid", "policies", ["uid"], unique=True)
    if policies:
        _fan_out(bind, policies, sqlite)


def downgrade() -> None:
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index("ix_policies_uid")
        batch_op.drop_column("uid")
