"""The catalog's ports: one typed repository per job, and the unit of work that
commits a change with its audit record and its outbox row.

Adapters: `storage.catalog.sql` (SQLite embedded, PostgreSQL scale-out).

The rule for transactions:

- **A change and its record commit together.** A write that has an audit record
  (document, organisation and policy changes) goes through a `UnitOfWork`: the change,
  the audit record and the outbox row (the index work it needs) are written in
  one transaction by `commit()`; workers are notified by `after_commit` hooks,
  which run only once the commit succeeded. Leaving the block without
  `commit()` (an error, a crash) rolls everything back: neither the change nor
  its record survives. (`Documents.create`, `create_many` and the `Policies`
  writes take an `audit=` event and write it in their own transaction, which
  keeps the same rule for callers without a unit of work.)
- **Everything else is one short transaction per method.** Reads, and writes that
  stand alone (outbox claims, index outcomes, token revocations, the batched
  audit of reads), call the repositories of a `CatalogStore` directly: each
  method opens and ends its own transaction. The hot read paths
  (`Documents.access_snapshot` and `access_records` on every search,
  `TokenRevocations.holder` and `is_revoked` on every request) stay one lean
  read each; they never need a unit of work.

Errors are ours (`storage.errors`): `NotFoundError`, `ConflictError` (a
uniqueness or state conflict; nothing written), `IdempotencyKeyReusedError`,
`StorageFullError` (disk full: say so, keep nothing), `StorageUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol

from storage.catalog.records import (
    AccessRecord,
    AccessSnapshot,
    AuditFilter,
    AuditRecord,
    ChainCheck,
    DepartmentRecord,
    DirectoryEntry,
    DocumentFilter,
    DocumentRecord,
    ExtractionRecord,
    FolderContents,
    FolderRecord,
    GrantRecord,
    IndexOutcome,
    MinistryRecord,
    NewAuditEvent,
    NewBlob,
    NewDocument,
    NewPolicy,
    OrgUsage,
    OutboxClaim,
    OutboxOwnerRecord,
    PolicyChange,
    PolicyRecord,
    RecentDocument,
    Revocation,
    SharedDocument,
    UserRecord,
    VersionRecord,
)
from storage.catalog.replication import Replication


class Organisation(Protocol):
    """Ministries, departments and users."""

    def create_ministry(self, code: str, name: str) -> MinistryRecord:
        """Raises ConflictError if the code exists."""

    def list_ministries(self) -> list[MinistryRecord]:
        """Every ministry, by code."""

    def get_ministry(self, code: str) -> MinistryRecord | None:
        """The ministry, or None."""

    def create_department(self, code: str, name: str, ministry: str) -> DepartmentRecord:
        """Raises NotFoundError (no such ministry) or ConflictError (the code exists)."""

    def list_departments(self) -> list[DepartmentRecord]:
        """Every department, by code."""

    def get_department(self, code: str) -> DepartmentRecord | None:
        """The department, or None."""

    def create_user(
        self,
        username: str,
        password_hash: str,
        display_name: str,
        department: str | None,
        roles: Sequence[str],
    ) -> UserRecord:
        """Raises NotFoundError (no such department) or ConflictError (the name exists)."""

    def get_user(self, username: str) -> UserRecord | None:
        """The user with its password hash, or None."""

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""

    def update_user(
        self,
        username: str,
        *,
        department: str | None = None,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
        display_name: str | None = None,
        must_change_password: bool | None = None,
        deleted: bool | None = None,
    ) -> UserRecord:
        """Change what is given. Disabling (and deleting, which also disables) revokes
        every token issued so far (kept revoked after the user is enabled again); a
        new `password_hash` records when it was set. Raises NotFoundError (no such
        user or department)."""

    def rename_ministry(self, code: str, name: str) -> MinistryRecord:
        """Raises NotFoundError."""

    def rename_department(self, code: str, name: str) -> DepartmentRecord:
        """Raises NotFoundError."""

    def usage(self, kind: str, code: str) -> OrgUsage:
        """What refers to the ministry (`kind` "ministry") or department ("dept"):
        documents (deleted ones too: they may be restored), users (deleted ones too),
        departments of a ministry, document grants and policies naming it."""

    def delete_ministry(self, code: str) -> None:
        """Remove a ministry (the caller checked `usage`). Raises NotFoundError."""

    def delete_department(self, code: str) -> None:
        """Remove a department (the caller checked `usage`). Raises NotFoundError."""

    def directory(
        self, query: str, kinds: Sequence[str], offset: int, limit: int
    ) -> tuple[int, list[DirectoryEntry]]:
        """Users (not deleted), departments and ministries of `kinds` whose code or
        name contains `query` (case-insensitive; "" matches all): (how many match,
        the page from `offset`), ministries, then departments, then users, by code."""


class DocumentViews(Protocol):
    """The personal views and the trash: lists narrowed in the catalog, and the
    trash's two writes. Whether the caller may read or manage each document is
    decided by the caller (the access rules), never by these methods."""

    def owned(
        self, owner: str, where: DocumentFilter, offset: int, limit: int
    ) -> tuple[int, list[DocumentRecord]]:
        """(how many live documents `owner` uploaded match `where`, the page from
        `offset` of at most `limit`), newest first."""

    def shared_with(
        self, tokens: Sequence[str], not_owner: str, where: DocumentFilter, now: datetime
    ) -> list[SharedDocument]:
        """Live documents not owned by `not_owner` with a grant in force at `now` naming
        one of `tokens` (`user:…`, `dept:…`, `ministry:…`): one entry a document, with
        its newest such grant (who made it and when), newest grant first."""

    def recent(self, username: str, where: DocumentFilter, limit: int) -> list[RecentDocument]:
        """Live documents `username` last opened or changed (recorded with the audit
        record of the read or change), newest first, at most `limit`."""

    def trashed(self, where: DocumentFilter) -> list[DocumentRecord]:
        """Deleted documents not yet purged, most recently deleted first."""

    def restore(self, document_id: str) -> DocumentRecord:
        """Bring a deleted, not purged document back, queued for a full re-index.
        Raises NotFoundError, ConflictError (not deleted, or purged)."""

    def purgeable(self, deleted_before: datetime, limit: int) -> list[DocumentRecord]:
        """Deleted, not purged documents deleted before `deleted_before`, oldest first."""

    def purge(self, deleted_before: datetime, limit: int) -> list[str]:
        """Mark up to `limit` of `purgeable` purged (out of the trash for good, queued so
        the index drops them; versions, grants and bytes kept); returns their ids.
        Idempotent: what is purged is never purged again."""


class Documents(DocumentViews, Protocol):
    """Documents with their versions, grants and upload idempotency keys.

    Every change bumps the document's revision and queues an outbox row for
    it in the same transaction; access changes also bump its ACL revision, so
    the index entry counts as stale on access until re-indexed.
    """

    def create_many(
        self,
        news: Sequence[NewDocument],
        *,
        audit: NewAuditEvent | None = None,
        audits: Sequence[NewAuditEvent | None] = (),
    ) -> list[DocumentRecord]:
        """Record new documents (bulk import, group commit): all or nothing, in one
        transaction. `audit`, if given, is recorded once per document (target set
        to its id); `audits`, if given, holds each document's own audit record (or
        None) in the order of `news` (ValueError if the lengths differ). Raises
        NotFoundError (no such department), ConflictError."""

    def create(
        self,
        new: NewDocument,
        *,
        idempotency_key: str | None = None,
        audit: NewAuditEvent | None = None,
    ) -> tuple[DocumentRecord, bool]:
        """Record a document, its first version, its outbox row and `audit` (target
        set to its id) in one transaction. Returns (document, created).

        With an `idempotency_key` the owner used within 24 hours for the same
        upload (`new.fingerprint`), returns that document and created=False;
        used for another upload, or its document deleted since, raises
        `IdempotencyKeyReusedError` and records nothing.
        """

    def idempotent_replay(
        self, owner: str, idempotency_key: str, fingerprint: str
    ) -> DocumentRecord | None:
        """The document an earlier upload with this key made, if this is the same
        upload; None if the key is unused (or expired). Raises
        `IdempotencyKeyReusedError` as `create` does (a shortcut before the bytes
        are stored: `create` has the last word)."""

    def get(self, document_id: str, *, include_deleted: bool = False) -> DocumentRecord:
        """Raises NotFoundError for a missing (or, by default, deleted) document."""

    def get_many(
        self, document_ids: Sequence[str], *, include_deleted: bool = False
    ) -> list[DocumentRecord]:
        """The documents with these ids that exist, in the order given."""

    def access_records(self, document_ids: Sequence[str]) -> dict[str, AccessRecord]:
        """The access facts of the live documents among these ids (deleted and unknown
        ids are absent): the late check of every search. One lean read."""

    def access_snapshot(self) -> AccessSnapshot:
        """Policies, pending policy ids and stale-access ids, in one read transaction
        (what every search reads before it queries the index)."""

    def stale_access_ids(self) -> set[str]:
        """Documents whose index entry may grant access the catalog no longer does:
        access changed after it was indexed, or a grant on it expired since."""

    def add_version(self, document_id: str, blob: NewBlob, actor: str) -> DocumentRecord:
        """Make `blob` (already durable) the current version. Raises NotFoundError."""

    def list_versions(self, document_id: str) -> list[VersionRecord]:
        """Every version, oldest first."""

    def update_metadata(
        self,
        document_id: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> DocumentRecord:
        """Change the title (then the uploader's) and/or tags (an access change:
        policies match on tags). Raises NotFoundError."""

    def set_acl(
        self, document_id: str, visibility: str, grants: Sequence[GrantRecord], actor: str
    ) -> DocumentRecord:
        """Replace visibility and grants (queued as an access-only re-index). Raises
        NotFoundError, ConflictError (a principal twice)."""

    def soft_delete(self, document_id: str, *, actor: str | None = None) -> None:
        """Hide a document everywhere (to the trash, deleted by `actor`); its versions
        and blobs are kept. Raises NotFoundError."""

    def expire_grants(self) -> list[str]:
        """Delete grants past their expiry and queue their documents; returns their ids."""

    def mark_indexed_many(self, outcomes: Sequence[IndexOutcome]) -> None:
        """Record index outcomes in one transaction and finish their outbox rows."""

    def mark_unavailable(self, document_ids: Sequence[str], detail: str) -> list[str]:
        """Mark these documents `failed` with `detail`, those still `pending` only,
        keeping their outbox rows (they are retried, and end `indexed` once the
        engine returns); returns the ids marked."""

    def all_ids(self, *, include_deleted: bool = False, batch: int = 1000) -> Iterator[list[str]]:
        """Every document id, in batches (for reindex and reconciliation)."""

    def count(self) -> int:
        """Live documents."""

    def existing_sha256(self, sha256s: Sequence[str], department: str) -> set[str]:
        """Which of these digests a live document of the department already has."""

    def status_counts(self) -> dict[tuple[str, str], int]:
        """Live documents by (status, status_detail) (`crossdoc status`)."""

    def live_with_digests(self, department: str, sha256s: Sequence[str]) -> list[DocumentRecord]:
        """The department's live documents whose current version has one of these
        digests, oldest first (duplicate uploads; `ix_documents_sha256` finds them)."""

    def mark_all_for_reindex(self) -> int:
        """Reset every document's index state and queue it (after the index was
        cleared); returns how many."""


class Outbox(Protocol):
    """Index work, committed with the change that needs it and claimed by workers
    under a lease; and the worker processes (owners) that hold claims."""

    def claim(
        self,
        limit: int,
        lease: timedelta,
        *,
        access_limit: int = 0,
        max_bytes: int | None = None,
        owner: str = "",
    ) -> list[OutboxClaim]:
        """Claim up to `limit` due rows for `lease` (a lapsed claim is claimable
        again), recording `owner`. With `max_bytes`, rows needing extraction stop
        once their files add up to more (the first is always claimed); with
        `access_limit` above `limit`, access-only rows are claimed beyond `limit`."""

    def pending_full_reindex(self, document_ids: Sequence[str]) -> set[str]:
        """Which of these documents have outbox work beyond their access."""

    def release(self, claim: OutboxClaim, error: str, retry_in: timedelta) -> None:
        """Give a claimed row back after a transient failure, due after `retry_in`."""

    def complete(self, claim: OutboxClaim) -> None:
        """Remove a claimed row whose work is done (no-op if it is gone)."""

    def register_owner(self, owner_id: str, host: str, pid: int, started: str) -> None:
        """Record (or refresh) a worker process about to claim rows."""

    def heartbeat_owner(self, owner_id: str) -> bool:
        """Say the owner is alive; False if its row is gone (taken for dead)."""

    def owners(self) -> list[OutboxOwnerRecord]:
        """Registered owners, and owners named by claims but not registered."""

    def reclaim(self, owner_ids: Sequence[str]) -> int:
        """Free the claims of owners that are gone (and remove them); returns rows freed."""

    def backlog(self) -> int:
        """Rows in the outbox (due or claimed)."""

    def due_ids(self, limit: int = 1000) -> list[int]:
        """Ids of the rows due now, oldest first."""


class Extractions(Protocol):
    """Extracted text cached by blob digest and extractor version."""

    def get(self, sha256s: Sequence[str], extractor_version: str) -> dict[str, ExtractionRecord]:
        """Cached extractions of these blobs by this extractor version, by SHA-256."""

    def put(self, records: Sequence[ExtractionRecord]) -> None:
        """Cache results in one transaction (replacing older rows of the same keys)."""


class AuditLog(Protocol):
    """The append-only audit log; each record carries the hash of the one before."""

    def append(self, events: Sequence[NewAuditEvent]) -> None:
        """Append events to the chain (one writer at a time extends it)."""

    def page(
        self,
        where: AuditFilter = ...,
        *,
        after_id: int = 0,
        limit: int = 100,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Records matching `where` with ids above `after_id` (and below `before_id`),
        oldest first, or newest first with `newest_first`."""

    def each(self, where: AuditFilter = ..., *, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record matching `where`, oldest first, read in batches."""

    def verify_chain(self) -> ChainCheck:
        """Re-hash the chain: (ok, records checked, first problem)."""


class TokenRevocations(Protocol):
    """Revoked tokens (by `jti`, `family`, or every token of a `user` up to a time),
    and the token check of every authenticated request."""

    def holder(
        self, username: str, token_id: str, family: str, issued_at: datetime
    ) -> UserRecord | None:
        """The user a token speaks for, read with its revocations in one statement;
        None if it is revoked or the user unknown. No password hash."""

    def revoke(self, entries: Sequence[Revocation], *, fail_if_revoked: bool = False) -> None:
        """Record revocations (pruning expired ones). With `fail_if_revoked`, an entry
        already present raises ConflictError and nothing is recorded."""

    def is_revoked(
        self, token_id: str | None, family: str, username: str, issued_at: datetime
    ) -> bool:
        """Whether this token (unless None), its family, or the user's tokens up to
        its issue time are revoked."""

    def prune(self) -> int:
        """Remove revocations past their expiry; returns how many."""


class Policies(Protocol):
    """Access policies and their fan-out (the documents a new match selects are
    queued for an access-only re-index in the change's own transaction)."""

    def list_all(self) -> list[PolicyRecord]:
        """Every policy, expired ones included."""

    def get(self, policy_id: int) -> PolicyRecord:
        """Raises NotFoundError."""

    def create(
        self, new: NewPolicy, actor: str, *, audit: NewAuditEvent | None = None
    ) -> PolicyChange:
        """Create a policy and queue its documents; `audit` (completed with the
        policy id and counts) in the same transaction."""

    def update(
        self, policy_id: int, new: NewPolicy, actor: str, *, audit: NewAuditEvent | None = None
    ) -> PolicyChange:
        """Replace a policy's fields; a new match is a new generation, queued.
        Raises NotFoundError."""

    def delete(self, policy_id: int, *, audit: NewAuditEvent | None = None) -> PolicyChange:
        """Delete a policy (its token stops counting at once). Raises NotFoundError."""

    def pending_ids(self) -> set[int]:
        """Policies whose token the index may still lack on some documents."""

    def fanout_backlog(self) -> int:
        """Documents whose index entry is older than the policy change that selected them."""

    def settle_fanouts(self) -> int:
        """Mark fan-outs done once the index has caught up; returns how many."""


class Folders(Protocol):
    """Each department's folder tree, and which folder a document is filed in.

    Folders are for finding: nothing here grants or narrows access. Names are
    unique among siblings; a folder moves only within its department, never
    under itself. Filing a document is a change of the document (its revision is
    bumped and it is queued for an access-only re-index, which rewrites its
    metadata, folder included).
    """

    def create(self, department: str, parent_id: str | None, name: str, actor: str) -> FolderRecord:
        """A new folder under `parent_id` (None: the top level). Raises NotFoundError
        (no such parent in the department, or no such department), ConflictError
        (a sibling has the name)."""

    def get(self, folder_id: str) -> FolderRecord:
        """Raises NotFoundError."""

    def get_many(self, folder_ids: Sequence[str]) -> dict[str, FolderRecord]:
        """The folders with these ids that exist, by id."""

    def children(self, department: str, parent_id: str | None) -> list[FolderRecord]:
        """The folders right under `parent_id` (None: the top level), by name."""

    def tree(self, department: str) -> list[FolderRecord]:
        """Every folder of the department, parents before children, siblings by name."""

    def subtree_ids(self, folder_id: str) -> list[str]:
        """The folder and every folder under it ([] if it does not exist)."""

    def rename(self, folder_id: str, name: str) -> FolderRecord:
        """Raises NotFoundError, ConflictError (a sibling has the name)."""

    def move(self, folder_id: str, parent_id: str | None) -> FolderRecord:
        """Move under `parent_id` (None: the top level) of the same department.
        Raises NotFoundError (no such folder or parent in its department),
        ConflictError (a sibling there has the name, or the parent is the folder
        itself or under it)."""

    def contents(self, folder_id: str) -> FolderContents:
        """What the folder holds right inside it."""

    def delete(self, folder_id: str) -> None:
        """Remove a folder (the caller checked `contents`). Raises NotFoundError."""

    def document_ids(
        self, folder_ids: Sequence[str], *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[str]]:
        """Live documents filed in these folders: (how many, the page), newest first."""

    def filed_in(self, document_ids: Sequence[str]) -> dict[str, str]:
        """The folder id of each of these documents that is filed in one (one lean read)."""

    def file_document(self, document_id: str, folder_id: str | None) -> DocumentRecord:
        """File a live document in `folder_id` (None: the top level), which must be a
        folder of its department. Raises NotFoundError."""


class UnitOfWork(Protocol):
    """One transaction over every repository: a change, its audit record and its
    outbox row commit together or not at all.

    Use once: `with catalog.unit_of_work() as uow: …; uow.commit()`. Leaving the
    block without `commit()` rolls back. Errors raised inside the block and by
    `commit()` are ours (ConflictError, StorageFullError,
    StorageUnavailableError, and the repositories' own).
    """

    @property
    def organisation(self) -> Organisation: ...
    @property
    def documents(self) -> Documents: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def extractions(self) -> Extractions: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def tokens(self) -> TokenRevocations: ...
    @property
    def policies(self) -> Policies: ...
    @property
    def folders(self) -> Folders: ...
    @property
    def replication(self) -> Replication: ...

    def __enter__(self) -> UnitOfWork:
        """Begin the write transaction (SQLite: `BEGIN IMMEDIATE`)."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` after a successful commit (e.g. wake the index worker);
        never if the unit of work does not commit. A failing hook is logged."""

    def commit(self) -> None:
        """Commit everything written through this unit of work, then run the hooks."""


class CatalogStore(Protocol):
    """Every repository, each method its own short transaction, and units of work."""

    @property
    def organisation(self) -> Organisation: ...
    @property
    def documents(self) -> Documents: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def extractions(self) -> Extractions: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def tokens(self) -> TokenRevocations: ...
    @property
    def policies(self) -> Policies: ...
    @property
    def folders(self) -> Folders: ...
    @property
    def replication(self) -> Replication: ...

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work (enter it with `with`)."""

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""

    def ping(self) -> None:
        """Raises StorageUnavailableError if the database does not answer."""

    def close(self) -> None:
        """Release connections."""
