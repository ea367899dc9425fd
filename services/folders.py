"""Folders: each department's tree, for finding documents. They never grant access.

Who sees a folder (its name can say more than one wants: fail closed): an
administrator, and the members of its department (the tree, names included).
Anyone else sees a folder only as the path of a document they may read, and
only that path (`paths_for`). Listing a folder's documents shows only those the
caller may read.

Who changes folders: as uploads are permitted (every member of a department
files documents there, `POST /documents`), the members of the department
(`dept_admin`s included) and administrators. Filing a document needs `write`
on the document too (the caller loaded it so), and a folder of its department.

Every change is one unit of work with its audit record (`folder_create`,
`folder_rename`, `folder_move`, `folder_delete`, `folder_file`); filing a
document also queues it for the index (its folder is a search filter) and wakes
the worker after the commit. Renames re-index nothing: the index holds folder
ids, and paths are resolved from the catalog when shown. A move re-indexes the
documents under the folder for access only, as their access may change with it
(policies can match a folder's subtree); until then the catalog decides them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from auth.access import Permission, Principal, Role, can
from indexer.access_facts import document_access
from services.documents import Caller
from services.errors import InUseError, InvalidChangeError, NotAllowedError
from storage.catalog.ports import CatalogStore, UnitOfWork
from storage.catalog.records import (
    DocumentRecord,
    FolderContents,
    FolderRecord,
    NewAuditEvent,
    audit_event,
)
from storage.errors import NotFoundError

#: Wakes the index worker for these document ids (their outbox rows are committed).
Notify = Callable[[Sequence[str]], None]

MAX_NAME_CHARS = 200
#: Characters a folder name may not hold: the path separator, and controls.
_FORBIDDEN = frozenset("/\\")

NOT_FOUND = "folder not found"
NOT_YOURS = (
    "폴더는 그 부서의 구성원과 관리자만 바꿀 수 있습니다 · "
    "only the department's members and administrators change its folders"
)


def clean_name(raw: str) -> str:
    """A folder name as stored: NFC, spaces collapsed. Raises InvalidChangeError
    for an empty or too long name, one with `/`, `\\` or control characters, or
    `.`/`..`."""
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name or name in {".", ".."}:
        raise InvalidChangeError("name: 폴더 이름이 비어 있습니다 · a folder needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidChangeError(
            f"name: 폴더 이름은 {MAX_NAME_CHARS}자 이하 · at most {MAX_NAME_CHARS} characters"
        )
    if any(c in _FORBIDDEN or unicodedata.category(c).startswith("C") for c in name):
        raise InvalidChangeError(
            "name: 폴더 이름에 / \\ 나 제어 문자는 쓸 수 없습니다 · "
            "no '/', '\\' or control characters in a folder name"
        )
    return name


def contents_message(contents: FolderContents) -> str:
    """What a folder still holds, in Korean then English (why it cannot be deleted)."""
    counts = [
        (contents.folders, "하위 폴더 {}개", "{} folder(s)"),
        (contents.documents, "문서 {}건", "{} document(s)"),
        (contents.deleted_documents, "삭제된 문서 {}건", "{} deleted document(s)"),
    ]
    korean = ", ".join(ko.format(n) for n, ko, _ in counts if n)
    english = ", ".join(en.format(n) for n, _, en in counts if n)
    return (
        f"폴더에 아직 {korean}이(가) 있습니다. 먼저 옮기거나 지우십시오 · "
        f"the folder still holds {english}: move or remove them first"
    )


def sees_department(principal: Principal, department: str) -> bool:
    """May `principal` see the department's folder tree (names included)?"""
    if principal.disabled or not principal.username:
        return False
    return Role.ADMIN in principal.roles or principal.department == department


def changes_department(principal: Principal, department: str) -> bool:
    """May `principal` change the department's folders (as uploads are permitted)?"""
    return sees_department(principal, department)


@dataclass(frozen=True)
class FolderPath:
    """A folder as a document's reader sees it: its id and the names from the top."""

    id: str
    names: tuple[str, ...]

    @property
    def text(self) -> str:
        return "/" + "/".join(self.names)


class FolderService:
    """Folder reads (what the caller may see) and changes (each audited in its own
    unit of work)."""

    def __init__(self, catalog: CatalogStore, notify: Notify | None = None) -> None:
        self._catalog = catalog
        self._notify = notify

    # -- reads -------------------------------------------------------------------

    def visible(self, principal: Principal, folder_id: str) -> FolderRecord:
        """The folder, if `principal` sees its department's tree. Raises
        NotFoundError for a missing folder and for one the caller may not see
        alike (its name and existence are not confirmed)."""
        try:
            folder = self._catalog.folders.get(folder_id)
        except NotFoundError:
            raise NotFoundError(NOT_FOUND) from None
        if not sees_department(principal, folder.department):
            raise NotFoundError(NOT_FOUND)
        return folder

    def tree(
        self, principal: Principal, department: str, parent_id: str | None = None
    ) -> list[FolderRecord]:
        """The department's folders (under `parent_id`, or all of them). Raises
        NotAllowedError (another department), NotFoundError (no such parent)."""
        if not sees_department(principal, department):
            raise NotAllowedError(
                "폴더는 그 부서의 구성원만 볼 수 있습니다 · "
                "only the department's members see its folders"
            )
        if parent_id is None:
            return self._catalog.folders.tree(department)
        parent = self.visible(principal, parent_id)
        if parent.department != department:
            raise NotFoundError(NOT_FOUND)
        return self._catalog.folders.children(department, parent_id)

    def paths(self, folders: Sequence[FolderRecord]) -> dict[str, FolderPath]:
        """The path of each folder (names from the top), by folder id."""
        wanted = {a for f in folders for a in f.ancestry}
        known = self._catalog.folders.get_many(sorted(wanted))
        out: dict[str, FolderPath] = {}
        for f in folders:
            names = tuple(known[a].name if a in known else "?" for a in f.ancestry)
            out[f.id] = FolderPath(f.id, names)
        return out

    def paths_for(self, docs: Sequence[DocumentRecord]) -> dict[str, FolderPath]:
        """The folder path of each of these documents that is filed in a folder, by
        document id. The caller may read the documents (checked before): the path
        of a readable document is what they may see of another department's tree."""
        folder_ids = sorted({d.folder_id for d in docs if d.folder_id})
        folders = self._catalog.folders.get_many(folder_ids)
        paths = self.paths(list(folders.values()))
        return {d.id: paths[d.folder_id] for d in docs if d.folder_id and d.folder_id in paths}

    def paths_of(self, document_ids: Sequence[str]) -> dict[str, FolderPath]:
        """`paths_for` by document id (two lean reads: for search hits, which the
        caller may read)."""
        filed = self._catalog.folders.filed_in(document_ids)
        folders = self._catalog.folders.get_many(sorted(set(filed.values())))
        paths = self.paths(list(folders.values()))
        return {d: paths[f] for d, f in filed.items() if f in paths}

    def search_subtree(self, folder_id: str) -> tuple[str, ...]:
        """The ids a search filter on `folder_id` matches: it and every folder under it
        (() for an unknown folder). Any caller may filter by any folder: the filter
        only narrows what they may read, and no name is shown but on their hits."""
        return tuple(self._catalog.folders.subtree_ids(folder_id))

    def readable_documents(
        self,
        principal: Principal,
        folder: FolderRecord,
        *,
        subtree: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[DocumentRecord]]:
        """The documents filed in `folder` (and under it, with `subtree`) that
        `principal` may read, newest first: (how many, the page). Documents the
        caller may not read count nowhere."""
        repo = self._catalog.folders
        folder_ids = repo.subtree_ids(folder.id) if subtree else [folder.id]
        policies = self._catalog.policies.list_all()
        now = datetime.now(UTC)
        readable: list[str] = []
        start = 0
        while True:  # the ids in batches, each decided against the catalog
            _, ids = repo.document_ids(folder_ids, offset=start, limit=1000)
            if not ids:
                break
            start += len(ids)
            records = self._catalog.documents.access_records(ids)
            readable += [
                i
                for i in ids
                if i in records
                and can(principal, document_access(records[i], policies), Permission.READ, now)
            ]
        page = readable[offset : offset + limit]
        return len(readable), self._catalog.documents.get_many(page)

    # -- changes -----------------------------------------------------------------

    def _may_change(self, principal: Principal, department: str) -> None:
        if not changes_department(principal, department):
            raise NotAllowedError(NOT_YOURS)

    def create(
        self,
        principal: Principal,
        caller: Caller,
        department: str,
        name: str,
        parent_id: str | None = None,
    ) -> FolderRecord:
        """A new folder. Raises NotAllowedError, InvalidChangeError (the name),
        NotFoundError (no such parent, or one the caller may not see),
        ConflictError (a sibling has the name)."""
        self._may_change(principal, department)
        clean = clean_name(name)
        with self._catalog.unit_of_work() as uow:
            if uow.organisation.get_department(department) is None:
                raise InvalidChangeError(f"department: no department {department}")
            return self._create_audited(uow, caller, department, parent_id, clean)

    def _create_audited(
        self, uow: UnitOfWork, caller: Caller, department: str, parent: str | None, name: str
    ) -> FolderRecord:
        """Create the folder and commit it with its `folder_create` audit record."""
        folder = uow.folders.create(department, parent, name, caller.username)
        detail = {"op": "create", "department": department, "parent": parent, "name": name}
        self._commit_audited(
            uow,
            audit_event(
                caller.username,
                "folder_create",
                f"folder:{folder.id}",
                caller.address,
                detail=detail,
            ),
        )
        return folder

    def rename(
        self, principal: Principal, caller: Caller, folder_id: str, name: str
    ) -> FolderRecord:
        """Raises NotFoundError, NotAllowedError, InvalidChangeError, ConflictError."""
        before = self.visible(principal, folder_id)
        self._may_change(principal, before.department)
        clean = clean_name(name)
        with self._catalog.unit_of_work() as uow:
            folder = uow.folders.rename(folder_id, clean)
            detail = {"op": "rename", "name": clean, "before": {"name": before.name}}
            self._commit_audited(
                uow,
                audit_event(
                    caller.username,
                    "folder_rename",
                    f"folder:{folder_id}",
                    caller.address,
                    detail=detail,
                ),
            )
        return folder

    def move(
        self, principal: Principal, caller: Caller, folder_id: str, parent_id: str | None
    ) -> FolderRecord:
        """Move under `parent_id` (None: the top level) of the same department.
        Raises NotFoundError (the folder or the parent, in its department),
        NotAllowedError, ConflictError (a name taken there; into itself or under it)."""
        before = self.visible(principal, folder_id)
        self._may_change(principal, before.department)
        if parent_id is not None:
            parent = self.visible(principal, parent_id)
            if parent.department != before.department:
                raise NotFoundError("parent: " + NOT_FOUND)
        with self._catalog.unit_of_work() as uow:
            folder = uow.folders.move(folder_id, parent_id)
            notify = self._notify
            if notify is not None:
                uow.after_commit(lambda: notify(()))
            detail = {
                "op": "move",
                "parent": parent_id,
                "before": {"parent": before.parent_id or None},
            }
            self._commit_audited(
                uow,
                audit_event(
                    caller.username,
                    "folder_move",
                    f"folder:{folder_id}",
                    caller.address,
                    detail=detail,
                ),
            )
        return folder

    def delete(self, principal: Principal, caller: Caller, folder_id: str) -> None:
        """Delete an empty folder. Raises NotFoundError, NotAllowedError, InUseError
        (it holds folders or documents, deleted ones too: the message says what)."""
        before = self.visible(principal, folder_id)
        self._may_change(principal, before.department)
        with self._catalog.unit_of_work() as uow:
            # Checked in the write transaction: nothing can be filed in it meanwhile.
            contents = uow.folders.contents(folder_id)
            if not contents.empty:
                raise InUseError(contents_message(contents))
            uow.folders.delete(folder_id)
            detail = {"op": "delete", "name": before.name, "department": before.department}
            self._commit_audited(
                uow,
                audit_event(
                    caller.username,
                    "folder_delete",
                    f"folder:{folder_id}",
                    caller.address,
                    detail=detail,
                ),
            )

    def file_document(
        self, principal: Principal, caller: Caller, doc: DocumentRecord, folder_id: str | None
    ) -> DocumentRecord:
        """File `doc` (loaded for `write`) in `folder_id` (None: the top level).
        Raises NotFoundError (no such folder in the document's department, or one
        the caller may not see), NotAllowedError."""
        self._may_change(principal, doc.department)
        if folder_id is not None:
            folder = self.visible(principal, folder_id)
            if folder.department != doc.department:
                raise NotFoundError("folder: " + NOT_FOUND)
        with self._catalog.unit_of_work() as uow:
            updated = uow.folders.file_document(doc.id, folder_id)
            detail = {"op": "file", "folder": folder_id, "before": {"folder": doc.folder_id}}
            uow.audit.append(
                [audit_event(caller.username, "folder_file", doc.id, caller.address, detail=detail)]
            )
            notify = self._notify
            if notify is not None:
                uow.after_commit(lambda: notify([doc.id]))
            uow.commit()
        return updated

    def ensure_path(self, department: str, names: Sequence[str], caller: Caller) -> str | None:
        """The folder at `names` from the department's top level, made where missing
        (each new folder audited as `folder_create`): `crossdoc import` keeping a
        source tree. Characters a name may not hold become `_`. None for no names.
        For operators (no principal is checked). Raises InvalidChangeError (a name
        that is empty once cleaned), NotFoundError (no such department)."""
        parent: str | None = None
        for raw in names:
            name = clean_name("".join("_" if c in _FORBIDDEN else c for c in raw))
            found = [
                f for f in self._catalog.folders.children(department, parent) if f.name == name
            ]
            if found:
                parent = found[0].id
                continue
            with self._catalog.unit_of_work() as uow:
                parent = self._create_audited(uow, caller, department, parent, name).id
        return parent

    def check_upload_folder(self, principal: Principal, department: str, folder_id: str) -> None:
        """Before an upload into `folder_id`: raises NotFoundError unless it is a
        folder of `department` the caller sees (the catalog checks it again when
        the document is recorded)."""
        folder = self.visible(principal, folder_id)
        if folder.department != department:
            raise NotFoundError("folder: " + NOT_FOUND)

    @staticmethod
    def _commit_audited(uow: UnitOfWork, event: NewAuditEvent) -> None:
        uow.audit.append([event])
        uow.commit()
