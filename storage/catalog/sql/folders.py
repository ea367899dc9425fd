"""Each department's folder tree, and filing documents in it (SQL).

A folder's `path` holds the ids from the top down (`/a/b/c/`): a subtree is one
prefix match (`LIKE '/a/b/%'`), and a move rewrites the paths of the subtree in
one statement. Ids are hex, so they hold no LIKE wildcard.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, select, true, update
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import DocumentRecord, FolderContents, FolderRecord
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import rowcount
from storage.catalog.sql.database import table as _table
from storage.catalog.sql.documents import SqlDocuments, _live_document, _new_revision
from storage.errors import ConflictError, NotFoundError

_FOLDERS = _table(m.Folder)
_DOCS = _table(m.Document)


def _ancestry(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def folder_record(r: Any) -> FolderRecord:
    """From an ORM `Folder` or a Core row of the folders table."""
    return FolderRecord(
        id=r.id,
        department=r.department,
        parent_id=r.parent_id,
        name=r.name,
        ancestry=_ancestry(r.path),
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
    )


def _name_taken(s: Session, department: str, parent_id: str, name: str, but: str = "") -> None:
    # Checked before the write for a clear message; the unique constraint has the last word.
    taken = s.scalar(
        select(_FOLDERS.c.id).where(
            _FOLDERS.c.department == department,
            _FOLDERS.c.parent_id == parent_id,
            _FOLDERS.c.name == name,
            _FOLDERS.c.id != but,
        )
    )
    if taken is not None:
        raise ConflictError(
            f"같은 위치에 '{name}' 폴더가 이미 있습니다 · a folder named '{name}' is already there"
        )


class SqlFolders(SqlRepository):
    """`ports.Folders` over SQL."""

    @staticmethod
    def _folder(s: Session, folder_id: str) -> m.Folder:
        row = s.get(m.Folder, folder_id)
        if row is None:
            raise NotFoundError(f"no folder {folder_id}")
        return row

    @staticmethod
    def _parent_path(s: Session, department: str, parent_id: str | None) -> str:
        if not parent_id:
            return "/"
        parent = s.get(m.Folder, parent_id)
        if parent is None or parent.department != department:
            raise NotFoundError(f"no folder {parent_id} in department {department}")
        return parent.path

    def create(self, department: str, parent_id: str | None, name: str, actor: str) -> FolderRecord:
        with self._session(write=True) as s:
            if s.get(m.Department, department) is None:
                raise NotFoundError(f"no department {department}")
            parent_path = self._parent_path(s, department, parent_id)
            _name_taken(s, department, parent_id or "", name)
            folder_id = uuid.uuid4().hex
            now = _now()
            row = m.Folder(
                id=folder_id,
                department=department,
                parent_id=parent_id or "",
                name=name,
                path=f"{parent_path}{folder_id}/",
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return folder_record(row)

    def get(self, folder_id: str) -> FolderRecord:
        with self._session() as s:
            return folder_record(self._folder(s, folder_id))

    def get_many(self, folder_ids: Sequence[str]) -> dict[str, FolderRecord]:
        if not folder_ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(select(_FOLDERS).where(_FOLDERS.c.id.in_(list(set(folder_ids)))))
            return {r.id: folder_record(r) for r in rows}

    def children(self, department: str, parent_id: str | None) -> list[FolderRecord]:
        with self._read() as conn:
            rows = conn.execute(
                select(_FOLDERS)
                .where(
                    _FOLDERS.c.department == department, _FOLDERS.c.parent_id == (parent_id or "")
                )
                .order_by(_FOLDERS.c.name, _FOLDERS.c.id)
            )
            return [folder_record(r) for r in rows]

    def tree(self, department: str) -> list[FolderRecord]:
        with self._read() as conn:
            rows = [
                folder_record(r)
                for r in conn.execute(
                    select(_FOLDERS)
                    .where(_FOLDERS.c.department == department)
                    .order_by(_FOLDERS.c.name, _FOLDERS.c.id)
                )
            ]
        by_parent: dict[str, list[FolderRecord]] = {}
        for r in rows:
            by_parent.setdefault(r.parent_id, []).append(r)
        out: list[FolderRecord] = []
        stack = list(reversed(by_parent.get("", [])))
        while stack:  # depth first: parents before children, siblings by name
            folder = stack.pop()
            out.append(folder)
            stack.extend(reversed(by_parent.get(folder.id, [])))
        return out

    def subtree_ids(self, folder_id: str) -> list[str]:
        with self._session() as s:
            row = s.get(m.Folder, folder_id)
            if row is None:
                return []
            return list(
                s.scalars(select(_FOLDERS.c.id).where(_FOLDERS.c.path.startswith(row.path)))
            )

    def rename(self, folder_id: str, name: str) -> FolderRecord:
        with self._session(write=True) as s:
            row = self._folder(s, folder_id)
            _name_taken(s, row.department, row.parent_id, name, but=row.id)
            row.name = name
            row.updated_at = _now()
            s.flush()
            return folder_record(row)

    def move(self, folder_id: str, parent_id: str | None) -> FolderRecord:
        with self._session(write=True) as s:
            row = self._folder(s, folder_id)
            parent_path = self._parent_path(s, row.department, parent_id)
            if parent_path.startswith(row.path):
                raise ConflictError(
                    "폴더를 자기 자신이나 그 하위 폴더로 옮길 수 없습니다 · "
                    "a folder cannot move into itself or a folder under it"
                )
            _name_taken(s, row.department, parent_id or "", row.name, but=row.id)
            old_path = row.path
            new_path = f"{parent_path}{row.id}/"
            # The subtree's paths in one statement: the new prefix, then what follows the old.
            s.execute(
                update(_FOLDERS)
                .where(_FOLDERS.c.path.startswith(old_path))
                .values(path=literal(new_path) + func.substr(_FOLDERS.c.path, len(old_path) + 1))
            )
            now = _now()
            s.execute(
                update(_FOLDERS)
                .where(_FOLDERS.c.id == folder_id)
                .values(parent_id=parent_id or "", updated_at=now)
            )
            self._requeue_subtree(s, new_path, now)
            s.expire(row)
            return folder_record(self._folder(s, folder_id))

    @staticmethod
    def _requeue_subtree(s: Session, path: str, now: datetime) -> int:
        """The documents filed under `path` changed ancestry: policies matching a folder
        may now select them or not. Their access counts as changed (the catalog decides
        them until re-indexed) and each is queued for an access-only re-index, in bulk
        (two statements, as a policy's fan-out)."""
        subtree = select(_FOLDERS.c.id).where(_FOLDERS.c.path.startswith(path))
        where = and_(_DOCS.c.folder_id.in_(subtree), _DOCS.c.deleted_at.is_(None))
        result = s.execute(
            update(_DOCS)
            .where(where)
            .values(
                revision=_DOCS.c.revision + 1,
                acl_revision=_DOCS.c.revision + 1,
                updated_at=now,
            )
        )
        count = rowcount(result)
        if count:
            outbox = _table(m.OutboxItem)
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
                        _DOCS.c.id, _DOCS.c.revision, at, at, literal(0), literal(""), true()
                    ).where(where),
                )
            )
        return count

    def contents(self, folder_id: str) -> FolderContents:
        with self._session() as s:
            self._folder(s, folder_id)
            folders = s.scalar(
                select(func.count()).select_from(_FOLDERS).where(_FOLDERS.c.parent_id == folder_id)
            )
            live = s.scalar(
                select(func.count()).where(
                    _DOCS.c.folder_id == folder_id, _DOCS.c.deleted_at.is_(None)
                )
            )
            deleted = s.scalar(
                select(func.count()).where(
                    _DOCS.c.folder_id == folder_id, _DOCS.c.deleted_at.is_not(None)
                )
            )
            return FolderContents(int(folders or 0), int(live or 0), int(deleted or 0))

    def delete(self, folder_id: str) -> None:
        with self._session(write=True) as s:
            self._folder(s, folder_id)
            s.execute(delete(_FOLDERS).where(_FOLDERS.c.id == folder_id))

    def document_ids(
        self, folder_ids: Sequence[str], *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[str]]:
        if not folder_ids:
            return 0, []
        where = (_DOCS.c.folder_id.in_(list(folder_ids)), _DOCS.c.deleted_at.is_(None))
        with self._read() as conn:
            total = conn.scalar(select(func.count()).where(*where))
            ids = conn.scalars(
                select(_DOCS.c.id)
                .where(*where)
                .order_by(_DOCS.c.created_at.desc(), _DOCS.c.id)
                .offset(offset)
                .limit(limit)
            )
            return int(total or 0), list(ids)

    def filed_in(self, document_ids: Sequence[str]) -> dict[str, str]:
        if not document_ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(_DOCS.c.id, _DOCS.c.folder_id).where(
                    _DOCS.c.id.in_(list(document_ids)), _DOCS.c.folder_id.is_not(None)
                )
            )
            return {r.id: r.folder_id for r in rows}

    def file_document(self, document_id: str, folder_id: str | None) -> DocumentRecord:
        with self._session(write=True) as s:
            d = _live_document(s, document_id)
            if folder_id is not None:
                folder = s.get(m.Folder, folder_id)
                if folder is None or folder.department != d.department:
                    raise NotFoundError(f"no folder {folder_id} in department {d.department}")
            if d.folder_id != folder_id:
                d.folder_id = folder_id
                # Policies may match a folder: who may read it may change with it. The
                # text is unchanged: the index rewrites its readers and metadata only.
                _new_revision(s, d, _now(), access_changed=True, access_only=True)
            s.flush()
            return SqlDocuments._orm_record(s, d, SqlDocuments._grants(s, [d.id])[d.id])
