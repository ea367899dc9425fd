"""The pure permission rules of auth.access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from auth.access import (
    DocumentAccess,
    Grant,
    Permission,
    Principal,
    can,
    readers_of,
    validate_grant_principal,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def doc(visibility: str = "department", *grants: Grant, owner: str = "kim") -> DocumentAccess:
    return DocumentAccess(
        owner=owner, department="D1", ministry="M1", visibility=visibility, grants=tuple(grants)
    )


def user(
    name: str = "lee",
    dept: str | None = "D1",
    ministry: str | None = "M1",
    roles: tuple[str, ...] = ("member",),
    disabled: bool = False,
) -> Principal:
    return Principal(name, dept, ministry, frozenset(roles), disabled)


@pytest.mark.parametrize(
    ("visibility", "who", "expected"),
    [
        ("private", user("kim"), True),
        ("private", user("lee"), False),
        ("private", user("boss", roles=("member", "dept_admin")), True),
        ("private", user("boss", dept="D2", roles=("member", "dept_admin")), False),
        ("department", user("lee"), True),
        ("department", user("lee", dept="D2"), False),
        ("ministry", user("lee", dept="D2"), True),
        ("ministry", user("lee", dept="D9", ministry="M9"), False),
        ("government", user("lee", dept="D9", ministry="M9"), True),
        ("government", user("lee", dept=None, ministry=None), True),
        ("government", user("root", dept="D1", roles=("member", "admin")), False),
        ("government", user("lee", disabled=True), False),
        ("unknown-visibility", user("lee"), False),
    ],
)
def test_read_by_visibility(visibility: str, who: Principal, expected: bool) -> None:
    assert can(who, doc(visibility), Permission.READ, NOW) is expected


def test_grants_and_their_expiry() -> None:
    d = doc(
        "private",
        Grant("user:lee", Permission.READ, NOW + timedelta(hours=1)),
        Grant("dept:D2", Permission.WRITE),
        Grant("ministry:M3", Permission.MANAGE),
    )
    assert can(user("lee"), d, Permission.READ, NOW)
    assert not can(user("lee"), d, Permission.READ, NOW + timedelta(hours=1))
    assert not can(user("lee"), d, Permission.WRITE, NOW)
    assert can(user("x", dept="D2"), d, Permission.WRITE, NOW)
    assert not can(user("x", dept="D2"), d, Permission.MANAGE, NOW)
    assert can(user("y", dept="D7", ministry="M3"), d, Permission.MANAGE, NOW)


def test_admin_reads_only_by_name() -> None:
    root = user("root", dept="D1", roles=("member", "admin"))
    assert not can(root, doc("department"), Permission.READ, NOW)
    assert can(root, doc("private", Grant("user:root", Permission.READ)), Permission.READ, NOW)


def test_readers_always_include_the_managers() -> None:
    readers = readers_of(doc("private"), NOW)
    assert readers == {"user:kim", "deptadmin:D1"}
    assert readers_of(doc("government"), NOW) == {"user:kim", "deptadmin:D1", "gov"}


def test_disabled_principal_has_no_tokens() -> None:
    assert user(disabled=True).tokens == frozenset()
    assert Principal("", None, None).tokens == frozenset()


@pytest.mark.parametrize("bad", ["gov", "user:", "role:admin", "deptadmin:D1", "user:a b", "x"])
def test_grant_principals_are_validated(bad: str) -> None:
    with pytest.raises(ValueError, match="principal"):
        validate_grant_principal(bad)
