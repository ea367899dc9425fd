"""Documents, their versions, grants and upload idempotency keys, and the access
reads of every search (SQL). Every change queues its outbox row in its own
transaction (`outbox.enqueue`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import (
    AccessRecord,
    AccessSnapshot,
    DocumentRecord,
    GrantRecord,
    IndexOutcome,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    VersionRecord,
    upload_fingerprint,
)
from storage.catalog.sql.audit import append_events
from storage.catalog.sql.database import IN_CHUNK as _IN_CHUNK
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import table as _table
from storage.catalog.sql.outbox import enqueue, outbox_row
from storage.catalog.sql.policies import ALL_POLICIES, PENDING_POLICY_IDS, policy_record
from storage.catalog.sql.replication import queue_versions, replication_row
from storage.catalog.sql.views import SqlDocumentViews
from storage.errors import ConflictError, IdempotencyKeyReusedError, NotFoundError

#: How long an upload's `Idempotency-Key` is remembered (as Stripe does): a retry
#: within it replays the first answer; after it the key is free again.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

# Statements of the per-request read paths (every search), built once: lean
# columns, Core rows, expanding IN parameters.
_DOCS = _table(m.Document)
_GRANTS = _table(m.DocumentGrant)
_FOLDERS = _table(m.Folder)
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
        _FOLDERS.c.path.label("folder_path"),
    )
    .select_from(
        _DOCS.outerjoin(_GRANTS, _GRANTS.c.document_id == _DOCS.c.id).outerjoin(
            _FOLDERS, _FOLDERS.c.id == _DOCS.c.folder_id
        )
    )
    .where(_DOCS.c.id.in_(bindparam("ids", expanding=True)), _DOCS.c.deleted_at.is_(None))
    .order_by(_GRANTS.c.id)
)
_STALE_ACCESS_IDS = select(_DOCS.c.id).where(_DOCS.c.indexed_revision < _DOCS.c.acl_revision)
_DEPARTMENTS = _table(m.Department)
_DEPARTMENT_MINISTRIES = select(_DEPARTMENTS.c.code, _DEPARTMENTS.c.ministry_code).where(
    _DEPARTMENTS.c.code.in_(bindparam("codes", expanding=True))
)
# The inserts of every upload (Core executemany, built once).
_INSERT_DOCUMENTS = insert(_DOCS)
_INSERT_VERSIONS = insert(_table(m.DocumentVersion))
_INSERT_GRANTS = insert(_GRANTS)
_INSERT_OUTBOX = insert(_table(m.OutboxItem))
_EXPIRED_GRANT_DOCUMENTS = select(_GRANTS.c.document_id).where(
    _GRANTS.c.expires_at <= bindparam("now")
)


def _ancestry(path: str | None) -> tuple[str, ...]:
    """A folder's id path (`/a/b/`) as ids from the top down."""
    return tuple(part for part in (path or "").split("/") if part)


def _stale_access_ids(conn: Connection) -> set[str]:
    stale = set(conn.scalars(_STALE_ACCESS_IDS))
    stale.update(conn.scalars(_EXPIRED_GRANT_DOCUMENTS, {"now": _now()}))
    return stale


def _live_document(s: Session, document_id: str) -> m.Document:
    """The document row to change; NotFoundError if missing or deleted."""
    d = s.get(m.Document, document_id)
    if d is None or d.deleted_at is not None:
        raise NotFoundError(f"no document {document_id}")
    return d


def _new_revision(
    s: Session,
    d: m.Document,
    now: datetime,
    *,
    access_changed: bool = False,
    access_only: bool = False,
) -> None:
    """A change to `d`: its next revision, queued for the index in this transaction.

    `access_changed`: who may read it may have changed, so its index entry grants
    what the catalog may no longer grant until it is re-indexed (`acl_revision`).
    `access_only`: the text is unchanged (the worker re-indexes without extracting).
    """
    d.revision += 1
    if access_changed:
        d.acl_revision = d.revision
    d.updated_at = now
    enqueue(s, d.id, d.revision, now, access_only=access_only)


class SqlDocuments(SqlDocumentViews):
    """`ports.Documents` over SQL (with `ports.DocumentViews`, from `views.py`)."""

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
    def _orm_record(s: Session, d: m.Document, grants: Sequence[GrantRecord]) -> DocumentRecord:
        """From an ORM `Document`, with its folder's ancestry."""
        folder = s.get(m.Folder, d.folder_id) if d.folder_id else None
        return SqlDocuments._document_record(d, grants, folder.path if folder else "")

    @staticmethod
    def _document_record(
        d: Any, grants: Sequence[GrantRecord], folder_path: str = ""
    ) -> DocumentRecord:
        """From an ORM `Document` or a Core row of the documents table (`folder_path`:
        its folder's id path, `/a/b/`, "" at the top level)."""
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
            deleted_by=d.deleted_by,
            purged_at=d.purged_at,
            folder_id=d.folder_id,
            folder_path=_ancestry(folder_path),
        )

    @staticmethod
    def _replace_grants(
        s: Session,
        document_id: str,
        grants: Sequence[GrantRecord],
        actor: str,
        now: datetime,
    ) -> None:
        # A grant kept as it was keeps who made it and when (`/me/shared` shows them).
        kept = {
            (g.principal, g.permission, g.expires_at): (g.created_by, g.created_at)
            for g in s.execute(
                select(
                    _GRANTS.c.principal,
                    _GRANTS.c.permission,
                    _GRANTS.c.expires_at,
                    _GRANTS.c.created_by,
                    _GRANTS.c.created_at,
                ).where(_GRANTS.c.document_id == document_id)
            )
        }
        s.execute(delete(m.DocumentGrant).where(m.DocumentGrant.document_id == document_id))
        rows = SqlDocuments._grant_rows(document_id, grants, actor, now)
        for row in rows:
            made = kept.get((row["principal"], row["permission"], row["expires_at"]))
            if made is not None:
                row["created_by"], row["created_at"] = made
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
        conn = s.connection()
        codes = {new.department for new in news}
        ministries: dict[str, str] = {
            code: ministry
            for code, ministry in conn.execute(_DEPARTMENT_MINISTRIES, {"codes": list(codes)})
        }
        for code in codes - ministries.keys():
            raise NotFoundError(f"no department {code}")
        filed = {new.folder_id for new in news if new.folder_id}
        paths: dict[str, str] = {}
        if filed:
            found = {
                r.id: r
                for r in conn.execute(
                    select(_FOLDERS.c.id, _FOLDERS.c.department, _FOLDERS.c.path).where(
                        _FOLDERS.c.id.in_(filed)
                    )
                )
            }
            for new in news:
                if new.folder_id and (
                    new.folder_id not in found or found[new.folder_id].department != new.department
                ):
                    raise NotFoundError(f"no folder {new.folder_id} in {new.department}")
            paths = {i: r.path for i, r in found.items()}
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
                    "folder_id": new.folder_id,
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
        conn.execute(_INSERT_DOCUMENTS, documents)
        conn.execute(_INSERT_VERSIONS, versions)
        if grants:
            conn.execute(_INSERT_GRANTS, grants)
        conn.execute(_INSERT_OUTBOX, [outbox_row(row["id"], 1, now) for row in documents])
        if self._db.replicate:
            # In this transaction: a version is recorded with its replication or not at all.
            queue_versions(
                s,
                [
                    replication_row(v["document_id"], 1, v["blob_key"], v["sha256"], v["size"], now)
                    for v in versions
                ],
            )
        return [
            DocumentRecord(
                **{**row, "tags": tuple(row["tags"])},
                grants=tuple(new.grants),
                folder_path=_ancestry(paths.get(new.folder_id or "")),
            )
            for row, new in zip(documents, news, strict=True)
        ]

    def create_many(
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
                append_events(s, events)
            return docs

    def create(
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
            return self._create(new, idempotency_key, audit)
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

    def _create(
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
                append_events(s, [replace(audit, target=doc_id)])
            if idempotency_key:
                # An expired row of this key is taken over, locked first. A live one
                # was committed by a concurrent create since the replay check above
                # (PostgreSQL reads each statement's committed state): that create
                # answers this upload too (see `create`), so nothing is recorded here.
                key = s.get(
                    m.IdempotencyKey,
                    (new.owner, idempotency_key),
                    with_for_update=True,
                    populate_existing=True,
                )
                if key is not None and key.created_at > now - IDEMPOTENCY_KEY_TTL:
                    raise ConflictError(f"idempotency key {idempotency_key!r} created meanwhile")
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
        return self._orm_record(s, d, self._grants(s, [d.id])[d.id])

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

    def get(self, document_id: str, *, include_deleted: bool = False) -> DocumentRecord:
        """Raises NotFoundError for a missing (or, by default, deleted) document."""
        docs = self.get_many([document_id], include_deleted=include_deleted)
        if not docs:
            raise NotFoundError(f"no document {document_id}")
        return docs[0]

    def get_many(
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
                query = (
                    select(table, _FOLDERS.c.path.label("folder_path_ids"))
                    .select_from(table.outerjoin(_FOLDERS, _FOLDERS.c.id == table.c.folder_id))
                    .where(table.c.id.in_(chunk))
                )
                if not include_deleted:
                    query = query.where(table.c.deleted_at.is_(None))
                found = {row.id: row for row in s.execute(query)}
                rows.update(found)
                grants.update(self._grants(s, list(found)))
            return [
                self._document_record(rows[i], grants[i], rows[i].folder_path_ids)
                for i in ids
                if i in rows
            ]

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
                _ancestry(r.folder_path),
            )
            for doc_id, (r, grants) in facts.items()
        }

    def add_version(self, document_id: str, blob: NewBlob, actor: str) -> DocumentRecord:
        with self._session(write=True) as s:
            d = _live_document(s, document_id)
            now = _now()
            d.version += 1
            d.filename = blob.filename
            d.declared_type = blob.declared_type
            d.content_type = blob.content_type
            d.size = blob.size
            d.sha256 = blob.sha256
            d.blob_key = blob.blob_key
            d.status = "pending"
            d.status_detail = ""
            _new_revision(s, d, now)
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
            s.flush()
            if self._db.replicate:
                queue_versions(
                    s,
                    [
                        replication_row(
                            document_id, d.version, blob.blob_key, blob.sha256, blob.size, now
                        )
                    ],
                )
            return self._orm_record(s, d, self._grants(s, [document_id])[document_id])

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
            d = _live_document(s, document_id)
            if title is not None:
                d.title = title
                d.title_from_user = True
            # Policies match on tags: who may read it may have changed with them.
            retagged = tags is not None and list(tags) != list(d.tags)
            if tags is not None:
                d.tags = list(tags)
            _new_revision(s, d, _now(), access_changed=retagged)
            s.flush()
            return self._orm_record(s, d, self._grants(s, [document_id])[document_id])

    def set_acl(
        self, document_id: str, visibility: str, grants: Sequence[GrantRecord], actor: str
    ) -> DocumentRecord:
        """Replace visibility and grants. Marks the index entry stale until re-indexed."""
        with self._session(write=True) as s:
            d = _live_document(s, document_id)
            now = _now()
            d.visibility = visibility
            self._replace_grants(s, document_id, grants, actor, now)
            _new_revision(s, d, now, access_changed=True, access_only=True)
            s.flush()
            return self._orm_record(s, d, tuple(grants))

    def soft_delete(self, document_id: str, *, actor: str | None = None) -> None:
        """Hide a document everywhere (to the trash, deleted by `actor`). Its versions
        and blobs are kept (nothing is lost)."""
        with self._session(write=True) as s:
            d = _live_document(s, document_id)
            now = _now()
            d.deleted_at = now
            d.deleted_by = actor
            _new_revision(s, d, now, access_changed=True)

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
            policies = tuple(policy_record(r) for r in conn.execute(ALL_POLICIES))
            pending = frozenset(conn.scalars(PENDING_POLICY_IDS)) if policies else frozenset()
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
                enqueue(s, d.id, d.revision, now, access_only=True)
            return doc_ids

    def mark_indexed_many(self, outcomes: Sequence[IndexOutcome]) -> None:
        """Record index outcomes in one transaction.

        The indexed revision only moves forward; the status (with its detail,
        detected type and automatic title) is set only if the version is still
        the current one, the title only while the uploader has not typed one;
        outbox rows up to the revision are done.
        """
        if not outcomes:
            return
        with self._session(write=True) as s:
            # Three statements for the whole batch (executemany), not three per document.
            docs = _table(m.Document)
            outbox = _table(m.OutboxItem)
            keys = [{"b_id": o.document_id, "b_rev": o.revision} for o in outcomes]
            s.execute(
                update(docs)
                .where(docs.c.id == bindparam("b_id"), docs.c.indexed_revision < bindparam("b_rev"))
                .values(indexed_revision=bindparam("b_rev")),
                keys,
            )
            statuses = [
                {
                    "b_id": o.document_id,
                    "b_ver": o.version,
                    "b_status": o.status,
                    "b_detail": o.status_detail,
                    "b_type": o.content_type or None,
                    "b_title": o.title or None,
                }
                for o in outcomes
                if o.status is not None
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

    def mark_unavailable(self, document_ids: Sequence[str], detail: str) -> list[str]:
        """Mark pending documents `failed` with `detail`; their outbox rows stay (see the port)."""
        if not document_ids:
            return []
        with self._session(write=True) as s:
            marked: list[str] = []
            for i in range(0, len(document_ids), _IN_CHUNK):
                chunk = list(document_ids[i : i + _IN_CHUNK])
                pending = m.Document.id.in_(chunk) & (m.Document.status == "pending")
                marked += s.scalars(select(m.Document.id).where(pending))
                s.execute(
                    update(m.Document).where(pending).values(status="failed", status_detail=detail)
                )
            return marked

    def all_ids(self, *, include_deleted: bool = False, batch: int = 1000) -> Iterator[list[str]]:
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

    def count(self) -> int:
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

    def status_counts(self) -> dict[tuple[str, str], int]:
        doc = m.Document
        with self._session() as s:
            rows = s.execute(
                select(doc.status, doc.status_detail, func.count())
                .where(doc.deleted_at.is_(None))
                .group_by(doc.status, doc.status_detail)
            )
            return {(status, detail or ""): int(n) for status, detail, n in rows}

    def live_with_digests(self, department: str, sha256s: Sequence[str]) -> list[DocumentRecord]:
        if not sha256s:
            return []
        with self._session() as s:
            ids = list(
                s.scalars(
                    select(m.Document.id)
                    .where(
                        m.Document.sha256.in_(list(set(sha256s))),
                        m.Document.department == department,
                        m.Document.deleted_at.is_(None),
                    )
                    .order_by(m.Document.created_at, m.Document.id)
                )
            )
        return self.get_many(ids)

    def mark_all_for_reindex(self) -> int:
        """Reset every document's index state and queue it (after the index was cleared)."""
        now = _now()
        with self._session(write=True) as s:
            s.execute(update(m.Document).values(indexed_revision=0))
            s.execute(delete(m.OutboxItem))
            ids = list(s.scalars(select(m.Document.id)))
            for doc_id, revision in s.execute(select(m.Document.id, m.Document.revision)):
                enqueue(s, doc_id, revision, now)
            return len(ids)
