"""Catalog tables (SQLAlchemy 2.0 declarative). Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class Ministry(Base):
    __tablename__ = "ministries"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column()


class Department(Base):
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    ministry_code: Mapped[str] = mapped_column(ForeignKey("ministries.code"), index=True)
    created_at: Mapped[datetime] = mapped_column()


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200))
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code"), index=True, nullable=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    # Set by an administrator's reset (a one-time password): until the user picks
    # a new password, their tokens serve only to change it.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # When the password was last set (None: at creation). Part of the key of the
    # user's sign-in failure bucket, so a reset (even by `crossdoc users
    # reset-password` in another process) also lifts a lockout.
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    # Deleted users are disabled and left out of lists and the directory; the row
    # stays (their name is in grants, documents and the audit log, never reused).
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


class Document(Base):
    """One document: its current metadata, ACL and indexing state.

    `revision` is bumped on every change (content, metadata, ACL, delete) and is
    what the index stores; `acl_revision` is the revision of the last change that
    could narrow or widen access (ACL, visibility, delete). While the index lags
    behind an access change (`indexed_revision < acl_revision`) searches treat the
    document's index entry as stale and decide from the catalog instead.

    `policy_revision` is the revision at which a policy was created or its match
    changed to select the document: until `indexed_revision` reaches it, the
    index entry lacks the policy's token, and searches by the policy's grantees
    match the document by the policy's match instead (see `PolicyFanout`).
    """

    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    # False while the title is automatic (the file name, or the title found in
    # the file's metadata); True once the uploader typed one, which then wins.
    title_from_user: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    filename: Mapped[str] = mapped_column(String(500))
    declared_type: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(64), index=True)
    ministry: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    visibility: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    status_detail: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(BigInteger)
    acl_revision: Mapped[int] = mapped_column(BigInteger)
    indexed_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    policy_revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: Who moved it to the trash (None: deleted before this was kept).
    deleted_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    #: The trash's retention ended: out of the index and the trash for good (the
    #: versions and their bytes are kept; retention of originals is not decided here).
    purged_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    # The folder the document is filed in (None: the department's top level). For
    # finding only: a folder never grants access (see `Folder`).
    folder_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)

    __table_args__ = (
        # The "stale access" set is read on every search: keep it an index scan.
        Index(
            "ix_documents_acl_stale",
            "id",
            sqlite_where=text("indexed_revision < acl_revision"),
            postgresql_where=text("indexed_revision < acl_revision"),
        ),
        Index(
            "ix_documents_policy_stale",
            "id",
            sqlite_where=text("indexed_revision < policy_revision"),
            postgresql_where=text("indexed_revision < policy_revision"),
        ),
        # The trash (listed, and looked through by the periodic purge): small.
        Index(
            "ix_documents_trash",
            "deleted_at",
            sqlite_where=text("deleted_at IS NOT NULL AND purged_at IS NULL"),
            postgresql_where=text("deleted_at IS NOT NULL AND purged_at IS NULL"),
        ),
    )


class RecentDocument(Base):
    """A document a user last opened or changed (one row a pair, the newest time).

    Written with the audit record of the read or change, in its transaction
    (`storage.catalog.sql.audit.append_events`): `/me/recent` reads it newest first
    instead of scanning the audit log.
    """

    __tablename__ = "recent_documents"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column()
    action: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_recent_documents_user_at", "username", "at"),)


class Folder(Base):
    """A folder of a department's tree: for finding documents, never for access.

    `parent_id` is "" at the department's top level (not NULL, so that the unique
    name among siblings holds there too). `path` is the ids from the top down,
    `/a/b/c/` (this folder last): a subtree is one prefix match, and a document's
    ancestry (what the index stores and policies match) is one read.
    """

    __tablename__ = "folders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    parent_id: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(2000), index=True)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column()
    __table_args__ = (UniqueConstraint("department", "parent_id", "name"),)


class DocumentVersion(Base):
    __tablename__ = "document_versions"
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(500))
    declared_type: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()


class DocumentGrant(Base):
    __tablename__ = "document_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    principal: Mapped[str] = mapped_column(String(140))
    permission: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("document_id", "principal"),)


class Policy(Base):
    """An access policy: a grant applied to every document its match selects.

    The index stores the policy's token (`policy:UID.GENERATION`) on the documents
    it matches; `generation` is bumped whenever the match changes, so the token
    of the old match stops counting at once. Principal, permission and expiry
    are read at query time and need no re-index.

    Ids are never given out again (SQLite `AUTOINCREMENT`; a sequence elsewhere),
    and the token is made of `uid`, random and unique, not of the id: the tokens
    a deleted policy left in the index must never count for another policy.
    """

    __tablename__ = "policies"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    match: Mapped[dict[str, str]] = mapped_column(JSON)
    principal: Mapped[str] = mapped_column(String(140))
    permission: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class PolicyFanout(Base):
    """A policy (generation) whose token is still being added to the index.

    Written in the transaction that creates the policy or changes its match.
    While a row is pending, searches by the policy's grantees also match
    documents by the policy's match (the index entries may lack the token);
    the worker marks rows done once no document is behind its policy revision.
    """

    __tablename__ = "policy_fanouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer)
    documents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)
    __table_args__ = (
        Index(
            "ix_policy_fanouts_pending",
            "policy_id",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )


class OutboxItem(Base):
    """Work to do on a document's derived data; written in the same transaction as the change.

    The outbox, not the broker, is the record of pending work: a row stays until
    the index reflects the document's revision, and a reconciler re-dispatches
    rows whose claim lapsed.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(32), index=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column()
    available_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: Only the document's access changed: its readers can be rewritten without
    #: extracting or re-reading its text (when no other row of it is pending).
    access_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The `OutboxOwner` holding the claim ("" when unclaimed or claimed before owners
    #: were recorded): a claim of an owner that is gone is taken back at once.
    claimed_by: Mapped[str] = mapped_column(String(64), default="", server_default="")


class OutboxOwner(Base):
    """A worker process that may hold outbox claims, and how to tell it is gone.

    On its own host a process is gone when its pid no longer runs the same
    process (pid and start time); from another host, when its heartbeat is
    older than the staleness limit. The claim lease stays the last resort.
    """

    __tablename__ = "outbox_owners"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))  # host name and boot id
    pid: Mapped[int] = mapped_column(Integer)
    started: Mapped[str] = mapped_column(String(64))  # the process's start time on its host
    heartbeat_at: Mapped[datetime] = mapped_column()


class IdempotencyKey(Base):
    """An `Idempotency-Key` an uploader used, per user, with the upload it answered.

    `request_hash` is the `upload_fingerprint` of that upload ("" for keys
    recorded before it was kept): a retry must match it to be replayed.
    """

    __tablename__ = "idempotency_keys"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column()
    request_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")


class ExtractedText(Base):
    """Cache of extraction results per blob and extractor version (derived data)."""

    __tablename__ = "extracted_text"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    extractor_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(200))
    doc_metadata: Mapped[dict[str, str]] = mapped_column(JSON)
    text_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()


class AuditEvent(Base):
    """Append-only audit log; each record carries the hash of the previous one."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), index=True)
    address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The newest audit record, kept beside the chain (one row, id 1).

    Updated in the transaction that appends to the chain, so that removing
    records from the end of the log (which leaves the chain itself consistent)
    is found by `AuditLog.verify_chain`.
    """

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)


class TokenRevocation(Base):
    """A revoked token (`jti`), token family (`family`) or all of a user's tokens (`user`).

    A `user` row refuses that user's tokens issued at or before `revoked_at`. Rows
    are kept until `expires_at`, after which every token they could refuse has
    expired anyway, and are then pruned.
    """

    __tablename__ = "token_revocations"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ReplicationItem(Base):
    """A stored version the replica may still lack (`storage.catalog.replication`).

    Written in the transaction that records the version; removed once its blob
    is verified on the replica. `available_at` is also the claim's lease.
    """

    __tablename__ = "replication_queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(200), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(index=True)
    available_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
