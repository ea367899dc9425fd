"""A document change and its audit record survive a crash together or not at all.

A child process makes the change through the document service (one unit of
work) and is SIGKILLed at a point between the change and the commit: after the
change is flushed to the database but before its audit record is written, or
with both written just before the commit. The catalog must then hold the change
if and only if it holds the audit record (here: neither). Without the kill, both.
The same for organisation changes (`services.organisation`), policy changes
(`services.policies`), folder changes (`services.folders`) and sessions
(`services.sessions`: sign-out, refresh).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import (
    AuditFilter,
    DocumentRecord,
    NewBlob,
    NewDocument,
    NewPolicy,
    Revocation,
)
from storage.catalog.sql import SqlCatalog

# Every child's start: its arguments, and the points where it SIGKILLs itself (no
# clean-up, no rollback): "before_audit" (the change is flushed, its audit record not
# written), "before_commit" (both flushed, not committed), "none" (no kill).
KILL_POINTS = r"""
import os, signal, sys
from storage.catalog.sql import policies as sql_policies
from storage.catalog.sql.audit import SqlAuditLog
from storage.catalog.sql.unit_of_work import SqlUnitOfWork

url, target, op, point = sys.argv[1:]

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "before_audit":
    SqlAuditLog.append = die
    sql_policies.append_events = die
elif point == "before_commit":
    def commit(self):
        self._session.flush()
        die()
    SqlUnitOfWork.commit = commit
"""


def _run_child(body: str, url: str, target: str, op: str, point: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILL_POINTS + body, url, target, op, point],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if point == "none":
        assert child.returncode == 0, child.stderr
    else:
        assert child.returncode == -signal.SIGKILL, child.stderr


# The child: make one change, dying at `point`.
CHILD = r"""
from services.documents import Caller, DocumentService
from storage.catalog.records import GrantRecord, NewBlob
from storage.catalog.sql import SqlCatalog

doc_id = target

notified = []
service = DocumentService(SqlCatalog(url), notified.extend)
caller = Caller("kim", "127.0.0.1")
if op == "set_acl":
    service.set_acl(doc_id, "government", [GrantRecord("user:lee", "read")], caller)
elif op == "update_metadata":
    service.update_metadata(doc_id, caller, title="바뀐 제목", tags=["새태그"])
elif op == "new_version":
    sha = "b" * 64
    blob = NewBlob("blobs/sha256/bb/bb/" + sha, sha, 5, "b.txt", "text/plain", "text/plain")
    service.new_version(doc_id, blob, caller)
elif op == "delete":
    service.delete(doc_id, caller)
assert notified == [doc_id], notified  # woken once, after the commit
"""

ACTIONS = {
    "set_acl": "acl_change",
    "update_metadata": "update_metadata",
    "new_version": "new_version",
    "delete": "delete",
}


def _changed(op: str, doc: DocumentRecord) -> bool:
    if op == "set_acl":
        return doc.visibility == "government" and len(doc.grants) == 1
    if op == "update_metadata":
        return doc.title == "바뀐 제목" and doc.tags == ("새태그",)
    if op == "new_version":
        return doc.version == 2
    return doc.deleted_at is not None


@pytest.fixture
def setup(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.organisation.create_ministry("M1", "부")
    catalog.organisation.create_department("D1", "과", "M1")
    catalog.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    catalog.organisation.create_user("lee", "hash", "이", "D1", ["member"])  # a grantee
    sha = "a" * 64
    blob = NewBlob("blobs/sha256/aa/aa/" + sha, sha, 3, "a.txt", "text/plain", "text/plain")
    doc, _ = catalog.documents.create(NewDocument(blob, "제목", "D1", "kim", "department"))
    catalog.close()
    return url, doc.id


@pytest.mark.parametrize("op", sorted(ACTIONS))
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_a_change_and_its_audit_record_survive_together_or_not_at_all(
    setup: tuple[str, str], op: str, point: str
) -> None:
    url, doc_id = setup
    _run_child(CHILD, url, doc_id, op, point)
    catalog = SqlCatalog(url)
    try:
        doc = catalog.documents.get(doc_id, include_deleted=True)
        changed = _changed(op, doc)
        audited = bool(catalog.audit.page(AuditFilter(action=ACTIONS[op], target=doc_id)))
        assert changed == audited, f"change kept: {changed}, audit record kept: {audited}"
        assert changed == (point == "none")
        assert catalog.audit.verify_chain().ok
    finally:
        catalog.close()


# Organisation and policy changes: the same rule, through their services.
ORG_CHILD = r"""
from services.documents import Caller
from services.organisation import OrganisationService
from services.policies import PolicyService, PolicyUpdate
from storage.catalog.policy_match import PolicyMatch
from storage.catalog.records import NewPolicy
from storage.catalog.sql import SqlCatalog

policy_id = target

catalog = SqlCatalog(url)
caller = Caller("kim", "127.0.0.1")
notified = []
organisation = OrganisationService(catalog, lambda password: "hashed:" + password)
policies = PolicyService(catalog, notified.append)
if op == "create_user":
    organisation.create_user("park", "password123", "박", "D1", ["auditor"], caller)
elif op == "update_user":
    organisation.update_user("lee", caller, department="D2", roles=["admin"], disabled=True)
elif op == "create_department":
    organisation.create_department("D3", "새 과", "M1", caller)
elif op == "policy_create":
    new = NewPolicy("새 정책", PolicyMatch.from_dict({"department": "D1"}), "dept:D2", "read")
    policies.create(new, caller)
    assert notified == [()], notified  # woken once, after the commit
elif op == "policy_update":
    policies.update(int(policy_id), PolicyUpdate(name="바뀐 정책"), caller)
    assert notified == [()], notified
"""

ORG_ACTIONS = {
    "create_user": ("org_change", "user:park"),
    "update_user": ("org_change", "user:lee"),
    "create_department": ("org_change", "dept:D3"),
    "policy_create": ("policy_create", None),
    "policy_update": ("policy_update", None),
}


def _org_changed(op: str, catalog: SqlCatalog) -> bool:
    org = catalog.organisation
    if op == "create_user":
        return org.get_user("park") is not None
    if op == "update_user":
        lee = org.get_user("lee")
        assert lee is not None
        changed = lee.disabled and lee.department == "D2" and "admin" in lee.roles
        # Disabling revokes the user's tokens in the same transaction.
        issued = datetime.now(UTC) - timedelta(minutes=1)
        assert catalog.tokens.is_revoked(None, "family", "lee", issued) == changed
        return changed
    if op == "create_department":
        return org.get_department("D3") is not None
    names = {p.name for p in catalog.policies.list_all()}
    return ("새 정책" if op == "policy_create" else "바뀐 정책") in names


@pytest.fixture
def org_setup(tmp_path: Path) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.organisation.create_ministry("M1", "부")
    catalog.organisation.create_department("D1", "과", "M1")
    catalog.organisation.create_department("D2", "둘째 과", "M1")
    catalog.organisation.create_user("kim", "hash", "김", "D1", ["admin", "member"])
    catalog.organisation.create_user("lee", "hash", "이", "D1", ["member"])
    match = PolicyMatch.from_dict({"ministry": "M1"})
    change = catalog.policies.create(NewPolicy("정책", match, "dept:D1", "read"), "kim")
    catalog.close()
    return url, change.policy.id


@pytest.mark.parametrize("op", sorted(ORG_ACTIONS))
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_an_organisation_or_policy_change_and_its_audit_record_survive_together(
    org_setup: tuple[str, int], op: str, point: str
) -> None:
    url, policy_id = org_setup
    _run_child(ORG_CHILD, url, str(policy_id), op, point)
    catalog = SqlCatalog(url)
    try:
        changed = _org_changed(op, catalog)
        action, target = ORG_ACTIONS[op]
        audited = bool(catalog.audit.page(AuditFilter(action=action, target=target)))
        assert changed == audited, f"change kept: {changed}, audit record kept: {audited}"
        assert changed == (point == "none")
        assert catalog.audit.verify_chain().ok
    finally:
        catalog.close()


# Folder changes (`services.folders`): a folder made, moved, a document filed.
FOLDER_CHILD = r"""
from auth.access import Principal
from services.documents import Caller
from services.folders import FolderService
from storage.catalog.sql import SqlCatalog

parent_id, folder_id, doc_id = target.split(",")
notified = []
folders = FolderService(SqlCatalog(url), notified.extend)
kim = Principal("kim", "D1", "M1", frozenset({"member"}))
caller = Caller("kim", "127.0.0.1")
doc = folders._catalog.documents.get(doc_id)
if op == "folder_create":
    folders.create(kim, caller, "D1", "새 폴더", parent_id)
elif op == "folder_move":
    folders.move(kim, caller, folder_id, parent_id)
elif op == "folder_file":
    folders.file_document(kim, caller, doc, folder_id)
    assert notified == [doc_id], notified  # woken once, after the commit
"""


@pytest.fixture
def folder_setup(setup: tuple[str, str]) -> tuple[str, str, str, str]:
    url, doc_id = setup
    catalog = SqlCatalog(url)
    parent = catalog.folders.create("D1", None, "위", "kim")
    folder = catalog.folders.create("D1", None, "옮길 폴더", "kim")
    catalog.close()
    return url, parent.id, folder.id, doc_id


@pytest.mark.parametrize("op", ["folder_create", "folder_move", "folder_file"])
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_a_folder_change_and_its_audit_record_survive_together(
    folder_setup: tuple[str, str, str, str], op: str, point: str
) -> None:
    url, parent_id, folder_id, doc_id = folder_setup
    _run_child(FOLDER_CHILD, url, f"{parent_id},{folder_id},{doc_id}", op, point)
    catalog = SqlCatalog(url)
    try:
        if op == "folder_create":
            changed = "새 폴더" in {f.name for f in catalog.folders.children("D1", parent_id)}
            target = None
        elif op == "folder_move":
            changed = catalog.folders.get(folder_id).parent_id == parent_id
            target = f"folder:{folder_id}"
        else:
            changed = catalog.documents.get(doc_id).folder_id == folder_id
            target = doc_id
        audited = bool(catalog.audit.page(AuditFilter(action=op, target=target)))
        assert changed == audited, f"change kept: {changed}, audit record kept: {audited}"
        assert changed == (point == "none")
        assert catalog.audit.verify_chain().ok
    finally:
        catalog.close()


# Sessions: a sign-out, a refresh token spent, and a spent one presented again (its
# whole sign-in revoked) keep their revocations if and only if they keep their records.
SESSION_CHILD = r"""
from datetime import UTC, datetime, timedelta
from auth.errors import InvalidTokenError
from auth.tokens import TokenClaims
from services.sessions import SessionService
from storage.catalog.sql import SqlCatalog

now = datetime.now(UTC)
kind = "access" if op == "sign_out" else "refresh"
issued, expires = now - timedelta(minutes=1), now + timedelta(hours=1)
claims = TokenClaims("kim", target, kind, issued, expires, "fam-1")
sessions = SessionService(SqlCatalog(url), timedelta(hours=12))
if op == "sign_out":
    sessions.sign_out(claims, "127.0.0.1")
elif op == "refresh":
    assert sessions.spend_refresh_token(claims, "127.0.0.1").username == "kim"
else:  # "reuse": this refresh token was spent before
    try:
        sessions.spend_refresh_token(claims, "127.0.0.1")
    except InvalidTokenError:
        pass
    else:
        raise AssertionError("a spent refresh token was accepted")
"""

SESSION_ACTIONS = {"sign_out": "sign_out", "refresh": "token_refresh", "reuse": "token_reuse"}


@pytest.fixture
def session_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = SqlCatalog(url)
    catalog.migrate()
    catalog.organisation.create_ministry("M1", "부")
    catalog.organisation.create_department("D1", "과", "M1")
    catalog.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    spent = Revocation("jti", "spent-token", datetime.now(UTC) + timedelta(hours=1))
    catalog.tokens.revoke([spent])
    catalog.close()
    return url


@pytest.mark.parametrize("op", sorted(SESSION_ACTIONS))
@pytest.mark.parametrize("point", ["before_audit", "before_commit", "none"])
def test_a_session_change_and_its_audit_record_survive_together(
    session_url: str, op: str, point: str
) -> None:
    token_id = "spent-token" if op == "reuse" else "fresh-token"
    _run_child(SESSION_CHILD, session_url, token_id, op, point)
    catalog = SqlCatalog(session_url)
    try:
        issued = datetime.now(UTC) - timedelta(minutes=1)
        if op == "reuse":
            changed = catalog.tokens.is_revoked(None, "fam-1", "kim", issued)
        elif op == "sign_out":
            changed = catalog.tokens.is_revoked("fresh-token", "fam-1", "kim", issued)
        else:
            changed = catalog.tokens.is_revoked("fresh-token", "other-family", "kim", issued)
        audited = bool(catalog.audit.page(AuditFilter(action=SESSION_ACTIONS[op])))
        assert changed == audited, f"change kept: {changed}, audit record kept: {audited}"
        assert changed == (point == "none")
        assert catalog.audit.verify_chain().ok
    finally:
        catalog.close()
