"""First start: `admin` and the demo organisation are created once, and audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.bootstrap import DEMO_DEPARTMENTS, DEMO_MINISTRIES, DEMO_USERS, bootstrap
from storage.catalog.records import AuditFilter
from storage.catalog.sql import SqlCatalog


def _hash(password: str) -> str:
    return "hashed:" + password  # the real hash is slow on purpose; not under test here


@pytest.fixture
def catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    store.migrate()
    yield store
    store.close()


def test_the_first_accounts_are_audited_as_made_by_the_system(catalog: SqlCatalog) -> None:
    report = bootstrap(catalog, _hash, admin_password=None, demo=True)
    assert report.admin_password and report.demo_password
    events = list(catalog.audit.each(AuditFilter(action="org_change")))
    assert {e.actor for e in events} == {"system"}
    admin = [e for e in events if e.target == "user:admin"]
    assert len(admin) == 1 and admin[0].detail["roles"] == ["member", "admin"]
    targets = {e.target for e in events}
    assert {f"ministry:{code}" for code, _ in DEMO_MINISTRIES} <= targets
    assert {f"dept:{code}" for code, *_ in DEMO_DEPARTMENTS} <= targets
    assert {f"user:{name}" for name, *_ in DEMO_USERS} <= targets
    assert catalog.audit.verify_chain().ok


def test_a_second_start_creates_and_audits_nothing(catalog: SqlCatalog) -> None:
    bootstrap(catalog, _hash, admin_password="first-password", demo=True)
    before = len(list(catalog.audit.each()))
    again = bootstrap(catalog, _hash, admin_password="other-password", demo=True)
    assert (again.admin_password, again.demo_password, again.demo_users) == (None, None, [])
    assert len(list(catalog.audit.each())) == before
    admin = catalog.organisation.get_user("admin")
    assert admin is not None and admin.password_hash == "hashed:first-password"


def test_without_demo_only_admin_is_created(catalog: SqlCatalog) -> None:
    report = bootstrap(catalog, _hash, admin_password="chosen", demo=False)
    assert report.admin_password is None  # chosen by the operator: never printed
    assert catalog.organisation.list_ministries() == []
    targets = [e.target for e in catalog.audit.each(AuditFilter(action="org_change"))]
    assert targets == ["user:admin"]
