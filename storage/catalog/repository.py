"""The catalog repository: every read and write of the catalog goes through `Catalog`.

Transactions are short and explicit. On SQLite, write transactions start with
`BEGIN IMMEDIATE` (one writer at a time, no lock upgrades that fail mid-way) and
the database runs in WAL mode with `synchronous=FULL`, so a committed upload
survives a power cut. On PostgreSQL, the outbox is claimed with `SKIP LOCKED`
and the audit chain head is locked `FOR UPDATE`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.catalog import models as m
from storage.catalog.policy_match import PolicyMatch, match_clause
from storage.catalog.records import (
    AccessRecord,
    AccessSnapshot,
    AuditRecord,
    DepartmentRecord,
    DocumentRecord,
    ExtractionRecord,
    GrantRecord,
    MinistryRecord,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    NewPolicy,
    OutboxClaim,
    OutboxOwnerRecord,
    PolicyChange,
    PolicyRecord,
    UserRecord,
    VersionRecord,
    upload_fingerprint,
)
from storage.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    StorageFullError,
    StorageUnavailableError,
)

GENESIS_HASH = "0" * 64
#: How long a disabled user's "tokens issued before now" revocation is kept: longer
#: than any token lifetime the settings allow (refresh tokens: at most 30 days).
USER_REVOCATION_KEPT = timedelta(days=31)
#: How long an upload's `Idempotency-Key` is remembered (as Stripe does): a retry
#: within it replays the first answer; after it the key is free again.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
_WRITE = "crossdoc_write"
_SINGLE_READ = "crossdoc_single_read"
#: Ids per `IN (…)` list: SQLite allows 32,766 bound variables per statement.
_IN_CHUNK = 10_000


def _table(model: type[m.Base]) -> Table:
    """The Core table of an ORM model (typed), for bulk statements and row reads."""
    return cast(Table, model.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


# Statements of the per-request read paths (every search and every authenticated
# request), built once: lean columns, Core rows, expanding IN parameters.
_DOCS = _table(m.Document)
_GRANTS = _table(m.DocumentGrant)
_USERS = _table(m.User)
_DEPARTMENTS = _table(m.Department)
_REVOCATIONS = _table(m.TokenRevocation)
_POLICIES = _table(m.Policy)
_FANOUTS = _table(m.PolicyFanout)
# One row per grant (or one with no grant) of each live document asked for.
_ACCESS_ROWS = (
    select(
        _DOCS.c.id,
        _DOCS.c.owner,
        _DOCS.c.department,
        _DOCS.c.ministry,
        _DOCS.c.visibility,
        _DOCS.c.tags,
        _GRANTS.c.principal,
        _GRANTS.c.permission,
        _GRANTS.c.expires_at,
    )
    .select_from(_DOCS.outerjoin(_GRANTS, _GRANTS.c.document_id == _DOCS.c.id))
    .where(_DOCS.c.id.in_(bindparam("ids", expanding=True)), _DOCS.c.deleted_at.is_(None))
    .order_by(_GRANTS.c.id)
)
# The revocation rows that may concern a token: its jti, its family, its user.
_TOKEN_REVOCATION_ROWS = (
    ((_REVOCATIONS.c.kind == "jti") & (_REVOCATIONS.c.value == bindparam("jti")))
    | ((_REVOCATIONS.c.kind == "family") & (_REVOCATIONS.c.value == bindparam("family")))
    | ((_REVOCATIONS.c.kind == "user") & (_REVOCATIONS.c.value == bindparam("username")))
)
# Whether one of them refuses it: a user row only for tokens issued up to its
# time (`_revoked` says the same in Python).
_TOKEN_REVOKED = exists().where(
    _TOKEN_REVOCATION_ROWS
    & (
        (_REVOCATIONS.c.kind != "user")
        | (_REVOCATIONS.c.revoked_at >= bindparam("issued_at", type_=m.UTCDateTime()))
    )
)
_TOKEN_HOLDER = (
    select(
        _USERS.c.username,
        _USERS.c.display_name,
        _USERS.c.department_code,
        _DEPARTMENTS.c.ministry_code,
        _USERS.c.roles,
        _USERS.c.disabled,
        _TOKEN_REVOKED.label("revoked"),
    )
    .select_from(_USERS.outerjoin(_DEPARTMENTS, _DEPARTMENTS.c.code == _USERS.c.department_code))
    .where(_USERS.c.username == bindparam("username"))
)
_TOKEN_REVOCATIONS = select(_REVOCATIONS.c.kind, _REVOCATIONS.c.revoked_at).where(
    _TOKEN_REVOCATION_ROWS
)
_ALL_POLICIES = select(_POLICIES).order_by(_POLICIES.c.id)
_PENDING_POLICY_IDS = select(_FANOUTS.c.policy_id).where(_FANOUTS.c.done_at.is_(None))
_STALE_ACCESS_IDS = select(_DOCS.c.id).where(_DOCS.c.indexed_revision < _DOCS.c.acl_revision)
_EXPIRED_GRANT_DOCUMENTS = select(_GRANTS.c.document_id).where(
    _GRANTS.c.expires_at <= bindparam("now")
)


_SQLITE_MMAP_BYTES = 256 << 20
_SQLITE_CACHE_KIB = 16 * 1024


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below issues
        # BEGIN itself, so that write transactions can be IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Reads (every search re-checks its page of hits) go through a memory
        # map of the file instead of a read() per page, and keep a larger
        # private cache of hot pages; with a million documents the file is
        # hundreds of MB and the default 2 MB cache misses on most lookups.
        cursor.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_SINGLE_READ, False):
            return  # autocommit: the statement is its own transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE, False) else "BEGIN")


#: PostgreSQL's SQLSTATE for "disk full".
_PG_DISK_FULL = "53100"


def _unavailable(err: sa_exc.OperationalError) -> StorageUnavailableError:
    """Our error for a database that cannot do the work now; a full disk is told apart,
    so that the caller can say so (SQLite: SQLITE_FULL, "database or disk is full")."""
    orig = err.orig
    full = (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(orig)
        or getattr(orig, "sqlstate", None) == _PG_DISK_FULL
        or getattr(orig, "pgcode", None) == _PG_DISK_FULL
    )
    if full:
        return StorageFullError(f"catalog storage is full: {orig}")
    return StorageUnavailableError(f"catalog unavailable: {orig}")


def _chain_hash(prev_hash: str, fields: dict[str, object]) -> str:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def audit_fields(
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str,
    outcome: str,
    detail: dict[str, object],
) -> dict[str, object]:
    """The fields an audit record's hash covers, in canonical form."""
    return {
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "target": target,
        "address": address,
        "outcome": outcome,
        "detail": detail,
    }


class Catalog:
    """Typed access to the catalog database."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)

    # -- plumbing -----------------------------------------------------------------

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(**{_WRITE: True})
                with conn.begin(), Session(bind=conn, expire_on_commit=False) as session:
                    yield session
                    session.flush()
        except sa_exc.IntegrityError as err:
            raise ConflictError(str(err.orig)) from err
        except sa_exc.OperationalError as err:
            raise _unavailable(err) from err

    @contextmanager
    def _read(self, *, single_statement: bool = False) -> Iterator[Connection]:
        """A Core connection in one read transaction (a consistent snapshot), for the
        per-request read paths where an ORM session is pure overhead.

        With `single_statement`, SQLite is not sent a BEGIN: one statement reads
        one snapshot anyway, and the round trip is saved.
        """
        try:
            with self.engine.connect() as conn:
                if single_statement:
                    conn = conn.execution_options(**{_SINGLE_READ: True})
                with conn.begin():
                    yield conn
        except sa_exc.OperationalError as err:
            raise _unavailable(err) from err

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from storage.catalog.migrate import upgrade_to_head

        upgrade_to_head(self.engine)

    def ping(self) -> None:
        with self._session() as s:
            s.execute(select(1))

    def close(self) -> None:
        self.engine.dispose()

    # -- organisation ---------------------------------------------------------------

    def create_ministry(self, code: str, name: str) -> MinistryRecord:
        with self._session(write=True) as s:
            if s.get(m.Ministry, code) is not None:
                raise ConflictError(f"ministry {code} exists")
            s.add(m.Ministry(code=code, name=name, created_at=_now()))
        return MinistryRecord(code, name)

    def list_ministries(self) -> list[MinistryRecord]:
        with self._session() as s:
            rows = s.scalars(select(m.Ministry).order_by(m.Ministry.code))
            return [MinistryRecord(r.code, r.name) for r in rows]

    def get_ministry(self, code: str) -> MinistryRecord | None:
        with self._session() as s:
            r = s.get(m.Ministry, code)
            return MinistryRecord(r.code, r.name) if r else None

    def create_department(self, code: str, name: str, ministry: str) -> DepartmentRecord:
        with self._session(write=True) as s:
            if s.get(m.Ministry, ministry) is None:
                raise NotFoundError(f"no ministry {ministry}")
            if s.get(m.Department, code) is not None:
                raise ConflictError(f"department {code} exists")
            s.add(m.Department(code=code, name=name, ministry_code=ministry, created_at=_now()))
        return DepartmentRecord(code, name, ministry)

    def list_departments(self) -> list[DepartmentRecord]:
        with self._session() as s:
            rows = s.scalars(select(m.Department).order_by(m.Department.code))
            return [DepartmentRecord(r.code, r.name, r.ministry_code) for r in rows]

    def get_department(self, code: str) -> DepartmentRecord | None:
        with self._session() as s:
            r = s.get(m.Department, code)
            return DepartmentRecord(r.code, r.name, r.ministry_code) if r else None

    def _user_record(self, s: Session, u: m.User) -> UserRecord:
        ministry = None
        if u.department_code:
            dept = s.get(m.Department, u.department_code)
            ministry = dept.ministry_code if dept else None
        return UserRecord(
            username=u.username,
            display_name=u.display_name,
            department=u.department_code,
            ministry=ministry,
            roles=tuple(u.roles),
            disabled=u.disabled,
            password_hash=u.password_hash,
        )

    def create_user(
        self,
        username: str,
        password_hash: str,
        display_name: str,
        department: str | None,
        roles: Sequence[str],
    ) -> UserRecord:
        with self._session(write=True) as s:
            if department is not None and s.get(m.Department, department) is None:
                raise NotFoundError(f"no department {department}")
            if s.get(m.User, username) is not None:
                raise ConflictError(f"user {username} exists")
            now = _now()
            user = m.User(
                username=username,
                password_hash=password_hash,
                display_name=display_name,
                department_code=department,
                roles=sorted(set(roles)),
                disabled=False,
                created_at=now,
                updated_at=now,
            )
            s.add(user)
            s.flush()
            return self._user_record(s, user)

    def get_user(self, username: str) -> UserRecord | None:
        with self._session() as s:
            u = s.get(m.User, username)
            return self._user_record(s, u) if u else None

    def token_holder(
        self, username: str, token_id: str, family: str, issued_at: datetime
    ) -> UserRecord | None:
        """The user a token speaks for, read with its revocations in one statement:
        None when the token, its family or (up to its issue time) the user's tokens
        are revoked, or the user is unknown. The password hash is not read."""
        with self._read(single_statement=True) as conn:
            row = conn.execute(
                _TOKEN_HOLDER,
                {"username": username, "jti": token_id, "family": family, "issued_at": issued_at},
            ).first()
        if row is None or row.revoked:
            return None
        return UserRecord(
            username=row.username,
            display_name=row.display_name,
            department=row.department_code,
            ministry=row.ministry_code,
            roles=tuple(row.roles),
            disabled=row.disabled,
        )

    def list_users(self) -> list[UserRecord]:
        with self._session() as s:
            users = list(s.scalars(select(m.User).order_by(m.User.username)))
            return [self._user_record(s, u) for u in users]

    def update_user(
        self,
        username: str,
        *,
        department: str | None = None,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> UserRecord:
        with self._session(write=True) as s:
            u = s.get(m.User, username)
            if u is None:
                raise NotFoundError(f"no user {username}")
            if department is not None:
                if s.get(m.Department, department) is None:
                    raise NotFoundError(f"no department {department}")
                u.department_code = department
            if roles is not None:
                u.roles = sorted(set(roles))
            if disabled and not u.disabled:
                # Refuse every token issued so far, also after the user is enabled again.
                now = _now()
                revocation = s.get(m.TokenRevocation, ("user", username))
                if revocation is None:
                    revocation = m.TokenRevocation(kind="user", value=username)
                    s.add(revocation)
                revocation.revoked_at = now
                revocation.expires_at = now + USER_REVOCATION_KEPT
            if disabled is not None:
                u.disabled = disabled
            if password_hash is not None:
                u.password_hash = password_hash
            u.updated_at = _now()
            s.flush()
            return self._user_record(s, u)

    # -- documents -------------------------------------------------------------------

    @staticmethod
    def _grants(s: Session, document_ids: Sequence[str]) -> dict[str, list[GrantRecord]]:
        out: dict[str, list[GrantRecord]] = {i: [] for i in document_ids}
        if not document_ids:
            return out
        table = m.DocumentGrant.__table__
        rows = s.execute(
            select(table.c.document_id, table.c.principal, table.c.permission, table.c.expires_at)
            .where(table.c.document_id.in_(document_ids))
            .order_by(table.c.id)
        )
        for g in rows:
            out[g.document_id].append(GrantRecord(g.principal, g.permission, g.expires_at))
        return out

    @staticmethod
    def _document_record(d: Any, grants: Sequence[GrantRecord]) -> DocumentRecord:
        """From an ORM `Document` or a Core row of the documents table."""
        return DocumentRecord(
            id=d.id,
            title=d.title,
            filename=d.filename,
            declared_type=d.declared_type,
            content_type=d.content_type,
            size=d.size,
            sha256=d.sha256,
            blob_key=d.blob_key,
            department=d.department,
            ministry=d.ministry,
            owner=d.owner,
            visibility=d.visibility,
            tags=tuple(d.tags),
            status=d.status,
            status_detail=d.status_detail,
            version=d.version,
            revision=d.revision,
            acl_revision=d.acl_revision,
            indexed_revision=d.indexed_revision,
            created_at=d.created_at,
            updated_at=d.updated_at,
            deleted_at=d.deleted_at,
            grants=tuple(grants),
            title_from_user=bool(d.title_from_user),
            policy_revision=d.policy_revision,
        )

    @staticmethod
    def _outbox_row(
        document_id: str, revision: int, now: datetime, *, access_only: bool = False
    ) -> dict[str, Any]:
        return {
            "document_id": document_id,
            "revision": revision,
            "created_at": now,
            "available_at": now,
            "attempts": 0,
            "last_error": "",
            "access_only": access_only,
        }

    @classmethod
    def _enqueue(
        cls,
        s: Session,
        document_id: str,
        revision: int,
        now: datetime,
        *,
        access_only: bool = False,
    ) -> None:
        row = cls._outbox_row(document_id, revision, now, access_only=access_only)
        s.execute(insert(_table(m.OutboxItem)), [row])

    @classmethod
    def _replace_grants(
        cls,
        s: Session,
        document_id: str,
        grants: Sequence[GrantRecord],
        actor: str,
        now: datetime,
    ) -> None:
        s.execute(delete(m.DocumentGrant).where(m.DocumentGrant.document_id == document_id))
        rows = cls._grant_rows(document_id, grants, actor, now)
        if rows:
            s.execute(insert(_table(m.DocumentGrant)), rows)

    @staticmethod
    def _grant_rows(
        document_id: str, grants: Sequence[GrantRecord], actor: str, now: datetime
    ) -> list[dict[str, Any]]:
        """Rows of the grants table; ConflictError if a principal appears twice."""
        seen: set[str] = set()
        rows = []
        for g in grants:
            if g.principal in seen:
                raise ConflictError(f"principal {g.principal} appears twice")
            seen.add(g.principal)
            rows.append(
                {
                    "document_id": document_id,
                    "principal": g.principal,
                    "permission": g.permission,
                    "expires_at": g.expires_at,
                    "created_at": now,
                    "created_by": actor,
                }
            )
        return rows

    def _insert_documents(
        self, s: Session, news: Sequence[NewDocument], now: datetime
    ) -> list[DocumentRecord]:
        """Insert new documents with their first versions, grants and outbox rows.

        Core executemany statements, one per table: this is the bulk-import and
        upload hot path, where the ORM's unit of work costs more than the
        inserts themselves.
        """
        ministries: dict[str, str] = {}
        for code in {new.department for new in news}:
            dept = s.get(m.Department, code)
            if dept is None:
                raise NotFoundError(f"no department {code}")
            ministries[code] = dept.ministry_code
        documents: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        grants: list[dict[str, Any]] = []
        for new in news:
            doc_id = uuid.uuid4().hex
            documents.append(
                {
                    "id": doc_id,
                    "title": new.title,
                    "title_from_user": new.title_from_user,
                    "filename": new.blob.filename,
                    "declared_type": new.blob.declared_type,
                    "content_type": new.blob.content_type,
                    "size": new.blob.size,
                    "sha256": new.blob.sha256,
                    "blob_key": new.blob.blob_key,
                    "department": new.department,
                    "ministry": ministries[new.department],
                    "owner": new.owner,
                    "visibility": new.visibility,
                    "tags": list(new.tags),
                    "status": "pending",
                    "status_detail": "",
                    "version": 1,
                    "revision": 1,
                    "acl_revision": 1,
                    "indexed_revision": 0,
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": None,
                    "policy_revision": 0,
                }
            )
            versions.append(
                {
                    "document_id": doc_id,
                    "version": 1,
                    "blob_key": new.blob.blob_key,
                    "sha256": new.blob.sha256,
                    "size": new.blob.size,
                    "filename": new.blob.filename,
                    "declared_type": new.blob.declared_type,
                    "created_by": new.owner,
                    "created_at": now,
                }
            )
            grants.extend(self._grant_rows(doc_id, new.grants, new.owner, now))
        s.execute(insert(_table(m.Document)), documents)
        s.execute(insert(_table(m.DocumentVersion)), versions)
        if grants:
            s.execute(insert(_table(m.DocumentGrant)), grants)
        s.execute(
            insert(_table(m.OutboxItem)),
            [self._outbox_row(row["id"], 1, now) for row in documents],
        )
        return [
            DocumentRecord(**{**row, "tags": tuple(row["tags"])}, grants=tuple(new.grants))
            for row, new in zip(documents, news, strict=True)
        ]

    def create_documents(
        self,
        news: Sequence[NewDocument],
        *,
        audit: NewAuditEvent | None = None,
        audits: Sequence[NewAuditEvent | None] = (),
    ) -> list[DocumentRecord]:
        """Record many new documents in one transaction (bulk import, group commit).

        All or nothing. `audit`, if given, is recorded once per document (target
        set to its id), in the same transaction; `audits`, if given, holds each
        document's own audit record (or None), in the order of `news`.
        """
        if audits and len(audits) != len(news):
            raise ValueError("audits: one per new document")
        with self._session(write=True) as s:
            docs = self._insert_documents(s, news, _now())
            events = [replace(audit, target=d.id) for d in docs] if audit is not None else []
            if audits:
                events += [replace(a, target=d.id) for a, d in zip(audits, docs, strict=True) if a]
            if events:
                self._append_audit(s, events)
            return docs

    def create_document(
        self,
        new: NewDocument,
        *,
        idempotency_key: str | None = None,
        audit: NewAuditEvent | None = None,
    ) -> tuple[DocumentRecord, bool]:
        """Record a new document, its first version and its outbox row in one transaction.

        Returns (document, created). With an `idempotency_key` the owner already
        used (within `IDEMPOTENCY_KEY_TTL`) for the same upload (`new.fingerprint`),
        returns that document and created=False; used for another upload, or its
        document deleted since, raises `IdempotencyKeyReusedError` and records
        nothing. This transaction is the authority: `idempotent_replay` before
        storing the bytes is only a shortcut.
        """
        try:
            return self._create_document(new, idempotency_key, audit)
        except IdempotencyKeyReusedError:
            raise
        except ConflictError:
            if not idempotency_key:
                raise
            # Two requests with one key at once (PostgreSQL: the second insert of the
            # key waits for the first, then fails): answer as the later retry would.
            replay = self.idempotent_replay(new.owner, idempotency_key, new.fingerprint)
            if replay is None:
                raise
            return replay, False

    def _create_document(
        self, new: NewDocument, idempotency_key: str | None, audit: NewAuditEvent | None
    ) -> tuple[DocumentRecord, bool]:
        with self._session(write=True) as s:
            now = _now()
            if idempotency_key:
                replay = self._idempotent_replay(
                    s, new.owner, idempotency_key, new.fingerprint, now
                )
                if replay is not None:
                    return replay, False
                self._forget_expired_keys(s, new.owner, idempotency_key, now)
            (doc,) = self._insert_documents(s, [new], now)
            doc_id = doc.id
            if audit is not None:
                self._append_audit(s, [replace(audit, target=doc_id)])
            if idempotency_key:
                # An expired row of this key (already loaded) is taken over.
                key = s.get(m.IdempotencyKey, (new.owner, idempotency_key))
                if key is None:
                    key = m.IdempotencyKey(username=new.owner, key=idempotency_key)
                    s.add(key)
                key.document_id = doc_id
                key.created_at = now
                key.request_hash = new.fingerprint
            s.flush()
            return doc, True

    def idempotent_replay(
        self, owner: str, idempotency_key: str, fingerprint: str
    ) -> DocumentRecord | None:
        """The document an earlier upload with this key made, if this is the same upload.

        None if the owner has not used the key (or it expired). Raises
        `IdempotencyKeyReusedError` if the key answered another upload
        (another `upload_fingerprint`) or its document has been deleted since:
        a dead id is never answered as if it had just been accepted.
        """
        with self._session() as s:
            return self._idempotent_replay(s, owner, idempotency_key, fingerprint, _now())

    def _idempotent_replay(
        self, s: Session, owner: str, idempotency_key: str, fingerprint: str, now: datetime
    ) -> DocumentRecord | None:
        row = s.get(m.IdempotencyKey, (owner, idempotency_key))
        if row is None or row.created_at <= now - IDEMPOTENCY_KEY_TTL:
            return None
        d = s.get(m.Document, row.document_id)
        if d is None or d.deleted_at is not None:
            raise IdempotencyKeyReusedError(
                "이 Idempotency-Key로 만든 문서는 삭제되었습니다. 새 키를 쓰십시오 / "
                "the document this Idempotency-Key created has been deleted; use a new key"
            )
        recorded = row.request_hash or self._legacy_fingerprint(s, d)
        if recorded != fingerprint:
            raise IdempotencyKeyReusedError(
                "이 Idempotency-Key는 다른 업로드에 이미 쓰였습니다. 새 키를 쓰십시오 / "
                "this Idempotency-Key was already used for a different upload "
                "(other bytes, file name, title, visibility or tags); use a new key"
            )
        return self._document_record(d, self._grants(s, [d.id])[d.id])

    @staticmethod
    def _legacy_fingerprint(s: Session, d: m.Document) -> str:
        """The fingerprint of a key recorded before fingerprints were kept, rebuilt
        from the document's first version (its bytes and name never change) and
        its title, visibility and tags (as they are now)."""
        first = s.get(m.DocumentVersion, (d.id, 1))
        return upload_fingerprint(
            first.sha256 if first is not None else d.sha256,
            first.filename if first is not None else d.filename,
            d.title if d.title_from_user else "",
            d.visibility,
            tuple(d.tags or ()),
        )

    @staticmethod
    def _forget_expired_keys(s: Session, owner: str, reused: str, now: datetime) -> None:
        """Delete the owner's expired keys, but for the one being reused (taken over)."""
        keys = _table(m.IdempotencyKey)
        s.execute(
            delete(keys).where(
                keys.c.username == owner,
                keys.c.key != reused,
                keys.c.created_at <= now - IDEMPOTENCY_KEY_TTL,
            )
        )

    def get_document(self, document_id: str, *, include_deleted: bool = False) -> DocumentRecord:
        """Raises NotFoundError for a missing (or, by default, deleted) document."""
        docs = self.get_documents([document_id], include_deleted=include_deleted)
        if not docs:
            raise NotFoundError(f"no document {document_id}")
        return docs[0]

    def get_documents(
        self, document_ids: Sequence[str], *, include_deleted: bool = False
    ) -> list[DocumentRecord]:
        """The documents with these ids that exist, in the order given."""
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return []
        # Core rows, not ORM objects: this runs on every search and document
        # request, and the unit-of-work machinery is pure overhead for reads.
        table = m.Document.__table__
        rows: dict[str, Any] = {}
        grants: dict[str, list[GrantRecord]] = {}
        with self._session() as s:
            for first in range(0, len(ids), _IN_CHUNK):
                chunk = ids[first : first + _IN_CHUNK]
                query = select(table).where(table.c.id.in_(chunk))
                if not include_deleted:
                    query = query.where(table.c.deleted_at.is_(None))
                found = {row.id: row for row in s.execute(query)}
                rows.update(found)
                grants.update(self._grants(s, list(found)))
            return [self._document_record(rows[i], grants[i]) for i in ids if i in rows]

    def access_records(self, document_ids: Sequence[str]) -> dict[str, AccessRecord]:
        """The access facts of the live documents among these ids (deleted and
        unknown ids are absent), with their grants: the late check of every search."""
        ids = list(dict.fromkeys(document_ids))
        facts: dict[str, tuple[Any, list[GrantRecord]]] = {}
        for first in range(0, len(ids), _IN_CHUNK):
            with self._read(single_statement=True) as conn:
                for r in conn.execute(_ACCESS_ROWS, {"ids": ids[first : first + _IN_CHUNK]}):
                    _, grants = facts.setdefault(r.id, (r, []))
                    if r.principal is not None:
                        grants.append(GrantRecord(r.principal, r.permission, r.expires_at))
        return {
            doc_id: AccessRecord(
                doc_id,
                r.owner,
                r.department,
                r.ministry,
                r.visibility,
                tuple(r.tags or ()),
                tuple(grants),
            )
            for doc_id, (r, grants) in facts.items()
        }

    def add_version(self, document_id: str, blob: NewBlob, actor: str) -> DocumentRecord:
        with self._session(write=True) as s:
            d = s.get(m.Document, document_id)
            if d is None or d.deleted_at is not None:
                raise NotFoundError(f"no document {document_id}")
            now = _now()
            d.version += 1
            d.revision += 1
            d.filename = blob.filename
            d.declared_type = blob.declared_type
            d.content_type = blob.content_type
            d.size = blob.size
            d.sha256 = blob.sha256
            d.blob_key = blob.blob_key
            d.status = "pending"
            d.status_detail = ""
            d.updated_at = now
            s.add(
                m.DocumentVersion(
                    document_id=document_id,
                    version=d.version,
                    blob_key=blob.blob_key,
                    sha256=blob.sha256,
                    size=blob.size,
                    filename=blob.filename,
                    declared_type=blob.declared_type,
                    created_by=actor,
                    created_at=now,
                )
            )
            self._enqueue(s, document_id, d.revision, now)
            s.flush()
            return self._document_record(d, self._grants(s, [document_id])[document_id])

    def list_versions(self, document_id: str) -> list[VersionRecord]:
        with self._session() as s:
            rows = s.scalars(
                select(m.DocumentVersion)
                .where(m.DocumentVersion.document_id == document_id)
                .order_by(m.DocumentVersion.version)
            )
            return [
                VersionRecord(
                    r.document_id,
                    r.version,
                    r.blob_key,
                    r.sha256,
                    r.size,
                    r.filename,
                    r.declared_type,
                    r.created_by,
                    r.created_at,
                )
                for r in rows
            ]

    def update_metadata(
        self,
        document_id: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> DocumentRecord:
        with self._session(write=True) as s:
            d = s.get(m.Document, document_id)
            if d is None or d.deleted_at is not None:
                raise NotFoundError(f"no document {document_id}")
            if title is not None:
                d.title = title
                d.title_from_user = True
            d.revision += 1
            if tags is not None and list(tags) != list(d.tags):
                d.tags = list(tags)
                # Policies match on tags: who may read it may have changed.
                d.acl_revision = d.revision
            d.updated_at = _now()
            self._enqueue(s, document_id, d.revision, d.updated_at)
            s.flush()
            return self._document_record(d, self._grants(s, [document_id])[document_id])

    def set_acl(
        self, document_id: str, visibility: str, grants: Sequence[GrantRecord], actor: str
    ) -> DocumentRecord:
        """Replace visibility and grants. Marks the index entry stale until re-indexed."""
        with self._session(write=True) as s:
            d = s.get(m.Document, document_id)
            if d is None or d.deleted_at is not None:
                raise NotFoundError(f"no document {document_id}")
            now = _now()
            d.visibility = visibility
            d.revision += 1
            d.acl_revision = d.revision
            d.updated_at = now
            self._replace_grants(s, document_id, grants, actor, now)
            self._enqueue(s, document_id, d.revision, now, access_only=True)
            s.flush()
            return self._document_record(d, tuple(grants))

    def soft_delete(self, document_id: str) -> None:
        """Hide a document everywhere. Its versions and blobs are kept (nothing is lost)."""
        with self._session(write=True) as s:
            d = s.get(m.Document, document_id)
            if d is None or d.deleted_at is not None:
                raise NotFoundError(f"no document {document_id}")
            now = _now()
            d.deleted_at = now
            d.revision += 1
            d.acl_revision = d.revision
            d.updated_at = now
            self._enqueue(s, document_id, d.revision, now)

    def stale_access_ids(self) -> set[str]:
        """Documents whose index entry may grant access the catalog no longer does.

        That is every document whose access changed after it was last indexed
        (ACL, visibility, tags, delete), plus every document holding a grant that
        has expired since (its index entry still lists the grantee). Policies
        need no entry here: the index holds their tokens, and who holds a token
        is decided at query time (see `auth.access.search_tokens`).
        """
        with self._read() as conn:
            return _stale_access_ids(conn)

    def access_snapshot(self) -> AccessSnapshot:
        """Policies, pending policy ids and stale-access ids, in one read transaction."""
        with self._read() as conn:
            policies = tuple(self._policy_record(r) for r in conn.execute(_ALL_POLICIES))
            pending = frozenset(conn.scalars(_PENDING_POLICY_IDS)) if policies else frozenset()
            return AccessSnapshot(policies, pending, frozenset(_stale_access_ids(conn)))

    def expire_grants(self) -> list[str]:
        """Delete grants past their expiry; re-index the documents they were on."""
        now = _now()
        with self._session(write=True) as s:
            doc_ids = sorted(
                set(
                    s.scalars(
                        select(m.DocumentGrant.document_id).where(m.DocumentGrant.expires_at <= now)
                    )
                )
            )
            if not doc_ids:
                return []
            s.execute(delete(m.DocumentGrant).where(m.DocumentGrant.expires_at <= now))
            for d in s.scalars(select(m.Document).where(m.Document.id.in_(doc_ids))):
                d.revision += 1
                d.acl_revision = d.revision
                self._enqueue(s, d.id, d.revision, now, access_only=True)
            return doc_ids

    def mark_indexed_many(
        self,
        outcomes: Sequence[
            tuple[str, int, int, str | None, str, str | None]
            | tuple[str, int, int, str | None, str, str | None, str | None]
        ],
    ) -> None:
        """Record index outcomes in one transaction.

        Each outcome is (document id, revision now in the index, version extracted,
        status or None to leave it, status detail, detected content type or None,
        and optionally the automatic title or None). The indexed revision only
        moves forward; the status and the automatic title are set only if the
        version is still the current one, the title only while the uploader has
        not typed one; outbox rows up to the revision are done.
        """
        if not outcomes:
            return
        with self._session(write=True) as s:
            # Three statements for the whole batch (executemany), not three per document.
            docs = _table(m.Document)
            outbox = _table(m.OutboxItem)
            keys = [{"b_id": o[0], "b_rev": o[1]} for o in outcomes]
            s.execute(
                update(docs)
                .where(docs.c.id == bindparam("b_id"), docs.c.indexed_revision < bindparam("b_rev"))
                .values(indexed_revision=bindparam("b_rev")),
                keys,
            )
            statuses = [
                {
                    "b_id": o[0],
                    "b_ver": o[2],
                    "b_status": o[3],
                    "b_detail": o[4],
                    "b_type": o[5] or None,
                    "b_title": (o[6] if len(o) > 6 else None) or None,
                }
                for o in outcomes
                if o[3] is not None
            ]
            if statuses:
                s.execute(
                    update(docs)
                    .where(docs.c.id == bindparam("b_id"), docs.c.version == bindparam("b_ver"))
                    .values(
                        status=bindparam("b_status"),
                        status_detail=bindparam("b_detail"),
                        content_type=func.coalesce(bindparam("b_type"), docs.c.content_type),
                        title=case(
                            (docs.c.title_from_user, docs.c.title),
                            else_=func.coalesce(bindparam("b_title"), docs.c.title),
                        ),
                    ),
                    statuses,
                )
            s.execute(
                delete(outbox).where(
                    outbox.c.document_id == bindparam("b_id"),
                    outbox.c.revision <= bindparam("b_rev"),
                ),
                keys,
            )

    def all_document_ids(
        self, *, include_deleted: bool = False, batch: int = 1000
    ) -> Iterator[list[str]]:
        """Every document id, in batches (for reindex and reconciliation)."""
        last = ""
        while True:
            with self._session() as s:
                query = select(m.Document.id).where(m.Document.id > last)
                if not include_deleted:
                    query = query.where(m.Document.deleted_at.is_(None))
                ids = list(s.scalars(query.order_by(m.Document.id).limit(batch)))
            if not ids:
                return
            yield ids
            last = ids[-1]

    def count_documents(self) -> int:
        with self._session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(m.Document)
                    .where(m.Document.deleted_at.is_(None))
                )
                or 0
            )

    def existing_sha256(self, sha256s: Sequence[str], department: str) -> set[str]:
        """Which of these digests a live document of the department already has."""
        if not sha256s:
            return set()
        with self._session() as s:
            return set(
                s.scalars(
                    select(m.Document.sha256).where(
                        m.Document.sha256.in_(list(set(sha256s))),
                        m.Document.department == department,
                        m.Document.deleted_at.is_(None),
                    )
                )
            )

    def mark_all_for_reindex(self) -> int:
        """Reset every document's index state and queue it (after the index was cleared)."""
        now = _now()
        with self._session(write=True) as s:
            s.execute(update(m.Document).values(indexed_revision=0))
            s.execute(delete(m.OutboxItem))
            ids = list(s.scalars(select(m.Document.id)))
            for doc_id, revision in s.execute(select(m.Document.id, m.Document.revision)):
                self._enqueue(s, doc_id, revision, now)
            return len(ids)

    # -- outbox --------------------------------------------------------------------

    def claim_outbox(
        self,
        limit: int,
        lease: timedelta,
        *,
        access_limit: int = 0,
        max_bytes: int | None = None,
        owner: str = "",
    ) -> list[OutboxClaim]:
        """Claim up to `limit` due outbox rows for `lease`; a lapsed claim is claimable again.

        The rows record `owner` (an `outbox_owners` id, registered first) so that
        `reclaim_outbox` can hand them back at once if that owner dies.

        With `max_bytes`, the rows that need extraction stop once their documents'
        files add up to more than that (the first row is always claimed): a batch
        is held in memory while it is extracted and indexed, so many small files
        make one large batch and large files go a few at a time.

        With `access_limit` above `limit`, access-only rows (cheap: no extraction)
        are claimed beyond the first `limit` rows, up to `access_limit` of them,
        so a policy change touching many documents is applied in large batches.
        """
        now = _now()
        with self._session(write=True) as s:
            due = (
                select(m.OutboxItem)
                .where(m.OutboxItem.available_at <= now)
                .order_by(m.OutboxItem.id)
                .with_for_update(skip_locked=True)
            )
            rows = list(s.scalars(due.limit(limit)))
            if max_bytes is not None and len(rows) > 1:
                rows = self._within_bytes(s, rows, max_bytes)
            extra = access_limit - sum(1 for r in rows if r.access_only)
            if extra > 0 and len(rows) == limit:
                rows.extend(
                    s.scalars(
                        due.where(
                            m.OutboxItem.access_only.is_(true()),
                            m.OutboxItem.id > rows[-1].id,
                        ).limit(extra)
                    )
                )
            claims = []
            for row in rows:
                row.available_at = now + lease
                row.attempts += 1
                row.claimed_by = owner
                claims.append(
                    OutboxClaim(
                        row.id, row.document_id, row.revision, row.attempts, row.access_only
                    )
                )
            return claims

    @staticmethod
    def _within_bytes(s: Session, rows: list[m.OutboxItem], max_bytes: int) -> list[m.OutboxItem]:
        """The longest prefix of `rows` (at least one) whose documents needing
        extraction add up to at most `max_bytes` of files."""
        wanted = list({r.document_id for r in rows if not r.access_only})
        sizes: dict[str, int] = {
            doc_id: size
            for doc_id, size in s.execute(
                select(_DOCS.c.id, _DOCS.c.size).where(_DOCS.c.id.in_(wanted))
            )
        }
        taken: list[m.OutboxItem] = []
        total = 0
        for row in rows:
            size = 0 if row.access_only else int(sizes.get(row.document_id) or 0)
            if taken and total + size > max_bytes:
                break
            taken.append(row)
            total += size
        return taken

    def pending_full_reindex(self, document_ids: Sequence[str]) -> set[str]:
        """Which of these documents have outbox work beyond their access (text or metadata)."""
        out: set[str] = set()
        ids = list(dict.fromkeys(document_ids))
        with self._session() as s:
            for first in range(0, len(ids), _IN_CHUNK):
                out.update(
                    s.scalars(
                        select(m.OutboxItem.document_id).where(
                            m.OutboxItem.document_id.in_(ids[first : first + _IN_CHUNK]),
                            m.OutboxItem.access_only.is_(false()),
                        )
                    )
                )
        return out

    @staticmethod
    def _claimed_row(claim: OutboxClaim) -> tuple[Any, ...]:
        # Match the row by id, document and revision, never by id alone: once a
        # row is gone SQLite may give its id to the next row inserted, and a
        # stale claim must not touch another document's work.
        return (
            m.OutboxItem.id == claim.id,
            m.OutboxItem.document_id == claim.document_id,
            m.OutboxItem.revision == claim.revision,
        )

    def release_outbox(self, claim: OutboxClaim, error: str, retry_in: timedelta) -> None:
        """Give a claimed row back after a transient failure, due again after `retry_in`."""
        with self._session(write=True) as s:
            s.execute(
                update(m.OutboxItem)
                .where(*self._claimed_row(claim))
                .values(available_at=_now() + retry_in, last_error=error[:2000], claimed_by="")
            )

    def complete_outbox(self, claim: OutboxClaim) -> None:
        """Remove a claimed row whose work is done (no-op if it is already gone)."""
        with self._session(write=True) as s:
            s.execute(delete(m.OutboxItem).where(*self._claimed_row(claim)))

    def register_outbox_owner(self, owner_id: str, host: str, pid: int, started: str) -> None:
        """Record (or refresh) a worker process that is about to claim outbox rows."""
        now = _now()
        owners = _table(m.OutboxOwner)
        with self._session(write=True) as s:
            done = s.execute(
                update(owners)
                .where(owners.c.id == owner_id)
                .values(host=host, pid=pid, started=started, heartbeat_at=now)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                s.execute(
                    insert(owners).values(
                        id=owner_id, host=host, pid=pid, started=started, heartbeat_at=now
                    )
                )

    def heartbeat_outbox_owner(self, owner_id: str) -> bool:
        """Say the owner is alive; False if its row is gone (it was taken for dead)."""
        owners = _table(m.OutboxOwner)
        with self._session(write=True) as s:
            done = s.execute(
                update(owners).where(owners.c.id == owner_id).values(heartbeat_at=_now())
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def outbox_owners(self) -> list[OutboxOwnerRecord]:
        """Every registered owner, and the owners named by claims but not registered
        (their row was removed: reported with an empty host and pid 0)."""
        owners = _table(m.OutboxOwner)
        outbox = _table(m.OutboxItem)
        with self._session() as s:
            known = [
                OutboxOwnerRecord(r.id, r.host, r.pid, r.started, r.heartbeat_at)
                for r in s.execute(select(owners).order_by(owners.c.id))
            ]
            ids = {o.id for o in known}
            named = s.scalars(
                select(outbox.c.claimed_by).where(outbox.c.claimed_by != "").distinct()
            )
            epoch = datetime.fromtimestamp(0, UTC)
            unknown = [OutboxOwnerRecord(i, "", 0, "", epoch) for i in named if i not in ids]
        return known + unknown

    def reclaim_outbox(self, owner_ids: Sequence[str]) -> int:
        """Take back the claims of owners that are gone: their rows are due now.

        The owners' rows are removed too. Returns how many outbox rows were freed.
        """
        if not owner_ids:
            return 0
        owners = _table(m.OutboxOwner)
        outbox = _table(m.OutboxItem)
        ids = list(owner_ids)
        with self._session(write=True) as s:
            freed = s.execute(
                update(outbox)
                .where(outbox.c.claimed_by.in_(ids))
                .values(available_at=_now(), claimed_by="")
            )
            s.execute(delete(owners).where(owners.c.id.in_(ids)))
            return int(freed.rowcount)  # type: ignore[attr-defined]

    def outbox_backlog(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(m.OutboxItem)) or 0)

    def due_outbox_ids(self, limit: int = 1000) -> list[int]:
        now = _now()
        with self._session() as s:
            return list(
                s.scalars(
                    select(m.OutboxItem.id)
                    .where(m.OutboxItem.available_at <= now)
                    .order_by(m.OutboxItem.id)
                    .limit(limit)
                )
            )

    # -- extraction cache ---------------------------------------------------------------

    def get_extractions(
        self, sha256s: Sequence[str], extractor_version: str
    ) -> dict[str, ExtractionRecord]:
        """Cached extractions of these blobs by this extractor version, by SHA-256."""
        if not sha256s:
            return {}
        table = m.ExtractedText.__table__
        with self._session() as s:
            rows = s.execute(
                select(table).where(
                    table.c.sha256.in_(list(set(sha256s))),
                    table.c.extractor_version == extractor_version,
                )
            )
            return {
                r.sha256: ExtractionRecord(
                    r.sha256,
                    r.extractor_version,
                    r.status,
                    r.detail,
                    r.content_type,
                    dict(r.doc_metadata),
                    zlib.decompress(r.text_zlib).decode("utf-8"),
                    r.truncated,
                )
                for r in rows
            }

    def put_extractions(self, records: Sequence[ExtractionRecord]) -> None:
        """Cache extraction results (one transaction for the batch; replaces older rows)."""
        latest = {(r.sha256, r.extractor_version): r for r in records}
        if not latest:
            return
        table = _table(m.ExtractedText)
        now = _now()
        # Compressed before the write transaction: the catalog's writers (uploads)
        # need not wait while megabytes of text are compressed.
        rows = [
            {
                "sha256": rec.sha256,
                "extractor_version": rec.extractor_version,
                "status": rec.status,
                "detail": rec.detail,
                "content_type": rec.content_type,
                "doc_metadata": rec.metadata,
                "text_zlib": zlib.compress(rec.text.encode("utf-8"), 6),
                "truncated": rec.truncated,
                "created_at": now,
            }
            for rec in latest.values()
        ]
        with self._session(write=True) as s:
            for version in {version for _, version in latest}:
                s.execute(
                    delete(table).where(
                        table.c.extractor_version == version,
                        table.c.sha256.in_([sha for sha, v in latest if v == version]),
                    )
                )
            s.execute(insert(table), rows)

    # -- audit -------------------------------------------------------------------------

    def append_audit(self, events: Sequence[NewAuditEvent]) -> None:
        """Append events to the hash chain (serialised: one writer extends the chain)."""
        if not events:
            return
        with self._session(write=True) as s:
            self._append_audit(s, events)

    @staticmethod
    def _append_audit(s: Session, events: Sequence[NewAuditEvent]) -> None:
        # The head row is the lock that serialises writers of the chain.
        head = s.scalars(
            select(m.AuditChainHead).where(m.AuditChainHead.id == 1).with_for_update()
        ).first()
        if head is None:
            head = m.AuditChainHead(id=1, last_id=0, last_hash=GENESIS_HASH, count=0)
            s.add(head)
        prev = head.last_hash
        rows = []
        for ev in events:
            at = _now()
            digest = _chain_hash(
                prev,
                audit_fields(at, ev.actor, ev.action, ev.target, ev.address, ev.outcome, ev.detail),
            )
            row = m.AuditEvent(
                at=at,
                actor=ev.actor,
                action=ev.action,
                target=ev.target,
                address=ev.address,
                outcome=ev.outcome,
                detail=ev.detail,
                prev_hash=prev,
                hash=digest,
            )
            s.add(row)
            rows.append(row)
            prev = digest
        s.flush()
        head.last_id = rows[-1].id
        head.last_hash = prev
        head.count += len(rows)

    @staticmethod
    def _audit_query(
        *,
        actor: str | None,
        action: str | None,
        target: str | None,
        outcome: str | None,
        since: datetime | None,
        until: datetime | None,
        after_id: int,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> Any:
        query = select(m.AuditEvent).where(m.AuditEvent.id > after_id)
        if before_id is not None:
            query = query.where(m.AuditEvent.id < before_id)
        if actor:
            query = query.where(m.AuditEvent.actor == actor)
        if action:
            query = query.where(m.AuditEvent.action == action)
        if target:
            query = query.where(m.AuditEvent.target == target)
        if outcome:
            query = query.where(m.AuditEvent.outcome == outcome)
        if since:
            query = query.where(m.AuditEvent.at >= since)
        if until:
            query = query.where(m.AuditEvent.at < until)
        return query.order_by(m.AuditEvent.id.desc() if newest_first else m.AuditEvent.id)

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit records matching every filter given, with ids above `after_id` (and
        below `before_id` if given), oldest first, or newest first with `newest_first`.

        `since` is inclusive, `until` exclusive. Page on with `after_id` set to the
        last id returned (oldest first) or `before_id` set to it (newest first).
        """
        with self._session() as s:
            query = self._audit_query(
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                since=since,
                until=until,
                after_id=after_id,
                before_id=before_id,
                newest_first=newest_first,
            )
            rows = s.scalars(query.limit(limit))
            return [
                AuditRecord(
                    r.id,
                    r.at,
                    r.actor,
                    r.action,
                    r.target,
                    r.address,
                    r.outcome,
                    dict(r.detail),
                    r.prev_hash,
                    r.hash,
                )
                for r in rows
            ]

    def iter_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        batch: int = 1000,
    ) -> Iterator[AuditRecord]:
        """Every matching audit record, oldest first, read in batches (for exports)."""
        after = 0
        while True:
            rows = self.list_audit(
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                since=since,
                until=until,
                after_id=after,
                limit=batch,
            )
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

    def verify_audit_chain(self) -> tuple[bool, int, str]:
        """Re-hash the whole chain and compare its end with the head.

        Returns (ok, records checked, first problem). The problem names the
        first record that does not verify: one whose contents were edited, one
        whose predecessor was removed, or the first one missing at the end.
        """
        prev = GENESIS_HASH
        checked = 0
        last_id = 0
        for r in self.iter_audit():
            expected = _chain_hash(
                prev,
                audit_fields(r.at, r.actor, r.action, r.target, r.address, r.outcome, r.detail),
            )
            if r.prev_hash != prev:
                return (
                    False,
                    checked,
                    f"record {r.id}: chain broken: the record before it "
                    f"(after record {last_id}) was removed or altered",
                )
            if r.hash != expected:
                return False, checked, f"record {r.id}: contents do not match its hash"
            prev = r.hash
            checked += 1
            last_id = r.id
        with self._session() as s:
            head = s.get(m.AuditChainHead, 1)
            if head is None:
                if checked:
                    return False, checked, "the chain head is missing"
                return True, 0, ""
            if head.last_hash != prev or head.count != checked:
                return (
                    False,
                    checked,
                    f"record {last_id + 1}: missing: the log ends at record {last_id} "
                    f"({checked} records) but its head records {head.count} records "
                    f"ending at record {head.last_id}",
                )
        return True, checked, ""

    # -- token revocations -----------------------------------------------------------

    def revoke_tokens(
        self, entries: Sequence[tuple[str, str, datetime]], *, fail_if_revoked: bool = False
    ) -> None:
        """Record revocations: (kind, value, until when it matters) each.

        Kinds are `jti`, `family` and `user`. With `fail_if_revoked`, an entry
        already present raises `ConflictError` and nothing is recorded (used to
        spend a refresh token exactly once). Expired revocations are pruned in
        the same transaction.
        """
        now = _now()
        with self._session(write=True) as s:
            s.execute(delete(m.TokenRevocation).where(m.TokenRevocation.expires_at <= now))
            for kind, value, expires_at in entries:
                existing = s.get(m.TokenRevocation, (kind, value))
                if existing is not None:
                    if fail_if_revoked:
                        raise ConflictError(f"{kind} {value} already revoked")
                    existing.revoked_at = now
                    existing.expires_at = max(existing.expires_at, expires_at)
                else:
                    s.add(
                        m.TokenRevocation(
                            kind=kind, value=value, revoked_at=now, expires_at=expires_at
                        )
                    )

    def token_revoked(
        self, token_id: str | None, family: str, username: str, issued_at: datetime
    ) -> bool:
        """Whether this token (unless None), its family, or the user's tokens up to its
        issue time are revoked."""
        with self._read() as conn:
            rows = conn.execute(
                _TOKEN_REVOCATIONS,
                # No jti is ever the empty string, so "" matches no jti row.
                {"jti": token_id or "", "family": family, "username": username},
            ).all()
        return _revoked(rows, issued_at)

    def prune_token_revocations(self) -> int:
        """Remove revocations past their expiry; returns how many."""
        with self._session(write=True) as s:
            result = s.execute(
                delete(m.TokenRevocation).where(m.TokenRevocation.expires_at <= _now())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # -- policies ----------------------------------------------------------------------

    @staticmethod
    def _policy_record(r: Any) -> PolicyRecord:
        return PolicyRecord(
            r.id,
            r.name,
            PolicyMatch.stored(r.match),
            r.principal,
            r.permission,
            r.expires_at,
            r.created_at,
            r.created_by,
            r.updated_at,
            r.updated_by,
            r.generation,
            r.uid,
        )

    def list_policies(self) -> list[PolicyRecord]:
        """Every policy, expired ones included (access rules skip those by date)."""
        with self._read() as conn:
            return [self._policy_record(r) for r in conn.execute(_ALL_POLICIES)]

    def get_policy(self, policy_id: int) -> PolicyRecord:
        """Raises NotFoundError."""
        with self._session() as s:
            r = s.get(m.Policy, policy_id)
            if r is None:
                raise NotFoundError(f"no policy {policy_id}")
            return self._policy_record(r)

    def _match_clause(self, match: dict[str, str]) -> ColumnElement[bool]:
        """SQL for a policy's stored match over the documents table (`policy_match`)."""
        return match_clause(PolicyMatch.stored(match), _table(m.Document), sqlite=self.is_sqlite)

    def _count_matching(self, s: Session, match: dict[str, str]) -> int:
        docs = _table(m.Document)
        query = select(func.count()).where(docs.c.deleted_at.is_(None), self._match_clause(match))
        return int(s.scalar(query) or 0)

    def _fan_out(self, s: Session, policy: m.Policy, now: datetime) -> int:
        """Queue the documents the policy matches for an access-only re-index, in bulk.

        Bumps their revision and policy revision and adds an outbox row for each
        (two statements, whatever the number of documents), and records the
        fan-out as pending: until the index catches up, searches by the policy's
        grantees also match by the policy's match. Returns the number of documents.
        """
        docs = _table(m.Document)
        outbox = _table(m.OutboxItem)
        where = and_(docs.c.deleted_at.is_(None), self._match_clause(dict(policy.match)))
        result = s.execute(
            update(docs)
            .where(where)
            .values(revision=docs.c.revision + 1, policy_revision=docs.c.revision + 1)
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            at = literal(now, outbox.c.created_at.type)
            s.execute(
                insert(outbox).from_select(
                    [
                        "document_id",
                        "revision",
                        "created_at",
                        "available_at",
                        "attempts",
                        "last_error",
                        "access_only",
                    ],
                    select(
                        docs.c.id, docs.c.revision, at, at, literal(0), literal(""), true()
                    ).where(where),
                )
            )
        s.add(
            m.PolicyFanout(
                policy_id=policy.id,
                generation=policy.generation,
                documents=count,
                created_at=now,
                done_at=None if count else now,
            )
        )
        return count

    @staticmethod
    def _policy_audit(s: Session, audit: NewAuditEvent | None, change: PolicyChange) -> None:
        if audit is None:
            return
        detail = {
            **audit.detail,
            "policy_id": change.policy.id,
            "generation": change.policy.generation,
            "affected_documents": change.affected_documents,
            "reindexed_documents": change.reindexed_documents,
        }
        target = f"policy:{change.policy.id}"
        Catalog._append_audit(s, [replace(audit, target=target, detail=detail)])

    def create_policy(
        self, new: NewPolicy, actor: str, *, audit: NewAuditEvent | None = None
    ) -> PolicyChange:
        """Create a policy and queue its documents for the index, in one transaction.

        `audit`, if given, is recorded in the same transaction (target and detail
        completed with the policy id and the number of documents it matches).
        """
        with self._session(write=True) as s:
            now = _now()
            row = m.Policy(
                uid=uuid.uuid4().hex,
                name=new.name,
                match=dict(new.match),
                principal=new.principal,
                permission=new.permission,
                expires_at=new.expires_at,
                created_at=now,
                created_by=actor,
                updated_at=None,
                updated_by="",
                generation=1,
            )
            s.add(row)
            s.flush()
            queued = self._fan_out(s, row, now)
            change = PolicyChange(self._policy_record(row), queued, queued)
            self._policy_audit(s, audit, change)
            return change

    def update_policy(
        self,
        policy_id: int,
        new: NewPolicy,
        actor: str,
        *,
        audit: NewAuditEvent | None = None,
    ) -> PolicyChange:
        """Replace a policy's fields.

        A new match starts a new generation (a new index token: documents of the
        old match lose the grant at once) and queues the documents of the new
        match. Principal, permission and expiry count at the next request as
        they are; nothing is re-indexed for them.
        """
        with self._session(write=True) as s:
            row = s.get(m.Policy, policy_id)
            if row is None:
                raise NotFoundError(f"no policy {policy_id}")
            now = _now()
            rematch = dict(row.match) != dict(new.match)
            row.name = new.name
            row.match = dict(new.match)
            row.principal = new.principal
            row.permission = new.permission
            row.expires_at = new.expires_at
            row.updated_at = now
            row.updated_by = actor
            if rematch:
                row.generation += 1
            s.flush()
            queued = self._fan_out(s, row, now) if rematch else 0
            matching = queued if rematch else self._count_matching(s, dict(row.match))
            change = PolicyChange(self._policy_record(row), matching, queued)
            self._policy_audit(s, audit, change)
            return change

    def delete_policy(self, policy_id: int, *, audit: NewAuditEvent | None = None) -> PolicyChange:
        """Delete a policy. Its token stops counting at once; nothing is re-indexed."""
        with self._session(write=True) as s:
            row = s.get(m.Policy, policy_id)
            if row is None:
                raise NotFoundError(f"no policy {policy_id}")
            record = self._policy_record(row)
            matching = self._count_matching(s, dict(row.match))
            s.delete(row)
            s.execute(delete(m.PolicyFanout).where(m.PolicyFanout.policy_id == policy_id))
            change = PolicyChange(record, matching, 0)
            self._policy_audit(s, audit, change)
            return change

    def pending_policy_ids(self) -> set[int]:
        """Policies whose token the index may still lack on some documents they match."""
        with self._read() as conn:
            return set(conn.scalars(_PENDING_POLICY_IDS))

    def policy_fanout_backlog(self) -> int:
        """Documents whose index entry is older than the policy change that selected them."""
        docs = _table(m.Document)
        with self._session() as s:
            return int(
                s.scalar(
                    select(func.count()).where(docs.c.indexed_revision < docs.c.policy_revision)
                )
                or 0
            )

    def settle_policy_fanouts(self) -> int:
        """Mark fan-outs done once the index holds no document behind its policy revision.

        Returns the number of fan-outs marked done.
        """
        docs = _table(m.Document)
        fanouts = _table(m.PolicyFanout)
        with self._session(write=True) as s:
            # Only fan-outs committed before the check below: under READ COMMITTED
            # one committed meanwhile must not be marked done with its documents
            # still behind.
            last = s.scalar(select(func.max(fanouts.c.id)).where(fanouts.c.done_at.is_(None)))
            if last is None:
                return 0
            behind = s.execute(
                select(docs.c.id).where(docs.c.indexed_revision < docs.c.policy_revision).limit(1)
            ).first()
            if behind is not None:
                return 0
            result = s.execute(
                update(fanouts)
                .where(fanouts.c.done_at.is_(None), fanouts.c.id <= last)
                .values(done_at=_now())
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _revoked(rows: Sequence[Any], issued_at: datetime) -> bool:
    """Whether revocation rows (kind, revoked_at) refuse a token issued at `issued_at`:
    a jti or family row always does; a user row, for tokens issued up to its time."""
    return any(kind != "user" or issued_at <= revoked_at for kind, revoked_at in rows)


def _stale_access_ids(conn: Connection) -> set[str]:
    stale = set(conn.scalars(_STALE_ACCESS_IDS))
    stale.update(conn.scalars(_EXPIRED_GRANT_DOCUMENTS, {"now": _now()}))
    return stale
