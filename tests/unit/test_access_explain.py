"""Explanations of access (auth.access.explain) agree with enforcement (auth.access.can)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from auth.access import (
    VISIBILITIES,
    Denial,
    DocumentAccess,
    Grant,
    Permission,
    Principal,
    SourceKind,
    can,
    explain,
    index_readers,
    search_tokens,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)

PRINCIPALS = [
    Principal(name, dept, ministry, frozenset(roles), disabled)
    for name, dept, ministry in (
        ("kim", "D1", "M1"),
        ("lee", "D1", "M1"),
        ("park", "D2", "M1"),
        ("choi", "D3", "M2"),
        ("nodept", None, None),
    )
    for roles in (("member",), ("member", "dept_admin"), ("admin",), ("auditor", "member"))
    for disabled in (False, True)
]

GRANT_SETS: list[tuple[Grant, ...]] = [
    (),
    (Grant("user:choi", Permission.READ),),
    (Grant("dept:D2", Permission.WRITE, FUTURE),),
    (Grant("ministry:M2", Permission.MANAGE, PAST),),
    (Grant("user:lee", Permission.READ, None, 7, "감사 정책", 1, "7" * 32),),
    (
        Grant("dept:D3", Permission.READ, PAST, 8, "지난 정책", 2, "8" * 32),
        Grant("user:park", Permission.MANAGE),
    ),
]


def test_every_explanation_verdict_equals_enforcement() -> None:
    checked = 0
    for visibility, grants, permission in itertools.product(
        (*VISIBILITIES, "unknown"), GRANT_SETS, Permission
    ):
        doc = DocumentAccess("kim", "D1", "M1", visibility, grants)
        for principal in PRINCIPALS:
            result = explain(principal, doc, permission, NOW)
            assert result.allowed == can(principal, doc, permission, NOW), (principal, doc)
            assert (result.denial is None) == result.allowed
            assert all(s.token in principal.tokens for s in result.because)
            checked += 1
    assert checked > 1000


def test_the_index_tokens_meet_exactly_when_the_caller_can_read() -> None:
    """What the index stores and what a search asks for meet iff `can` says so,
    for any set of policies in force (active, expired, granting anyone)."""
    in_force = [g for grants in GRANT_SETS for g in grants if g.policy_id is not None]
    checked = 0
    for visibility, grants in itertools.product((*VISIBILITIES, "unknown"), GRANT_SETS):
        doc = DocumentAccess("kim", "D1", "M1", visibility, grants)
        stored = index_readers(doc, NOW)
        for principal in PRINCIPALS:
            asked = search_tokens(principal, in_force, NOW)
            assert (not asked.isdisjoint(stored)) == can(principal, doc, Permission.READ, NOW), (
                principal,
                doc,
            )
            checked += 1
    assert checked > 1000


def test_a_deleted_policys_tokens_count_for_no_policy_given_its_id_again() -> None:
    """Policy tokens are made of the policy's uid: a policy with the id and generation of
    one deleted earlier (SQLite could hand the id out again) does not hold the tokens the
    deleted one left in the index; a policy grant without uid gets no token at all."""
    park = next(p for p in PRINCIPALS if p.username == "park" and not p.roles - {"member"})
    deleted = Grant("dept:D3", Permission.READ, None, 7, "지운 정책", 1, "a" * 32)
    stored = index_readers(DocumentAccess("kim", "D1", "M1", "private", (deleted,)), NOW)
    reused = Grant("ministry:M1", Permission.READ, None, 7, "새 정책", 1, "b" * 32)
    assert search_tokens(park, [reused], NOW).isdisjoint(stored)
    assert not search_tokens(park, [replace(reused, policy_uid="a" * 32)], NOW).isdisjoint(stored)
    no_uid = replace(deleted, policy_uid="")
    assert not any(
        t.startswith("policy:")
        for t in index_readers(DocumentAccess("kim", "D1", "M1", "private", (no_uid,)), NOW)
    )
    assert search_tokens(park, [replace(reused, policy_uid="")], NOW) == park.tokens


def test_reasons_name_what_gives_access() -> None:
    kim, lee = PRINCIPALS[0], PRINCIPALS[8]
    boss = Principal("boss", "D1", "M1", frozenset({"member", "dept_admin"}))
    doc = DocumentAccess(
        "kim", "D1", "M1", "department", (Grant("user:lee", Permission.WRITE, None, 3, "편집"),)
    )
    assert {s.kind for s in explain(kim, doc, Permission.READ, NOW).because} == {
        SourceKind.OWNER,
        SourceKind.VISIBILITY,
    }
    lee_read = explain(lee, doc, Permission.READ, NOW)
    assert {s.kind for s in lee_read.because} == {SourceKind.VISIBILITY, SourceKind.POLICY}
    policy = next(s for s in lee_read.because if s.kind is SourceKind.POLICY)
    assert (policy.policy_id, policy.policy_name, policy.token) == (3, "편집", "user:lee")
    assert not explain(lee, doc, Permission.MANAGE, NOW).allowed
    assert [s.kind for s in explain(boss, doc, Permission.MANAGE, NOW).because] == [
        SourceKind.DEPT_ADMIN
    ]


def test_denials_say_why() -> None:
    doc = DocumentAccess(
        "kim", "D1", "M1", "government", (Grant("user:choi", Permission.READ, PAST),)
    )
    admin = Principal("root", "D1", "M1", frozenset({"admin"}))
    gone = Principal("lee", "D1", "M1", frozenset({"member"}), disabled=True)
    choi = Principal("choi", None, None, frozenset({"member"}))
    assert explain(admin, doc, Permission.READ, NOW).denial is Denial.ADMIN_WITHOUT_GRANT
    assert explain(gone, doc, Permission.READ, NOW).denial is Denial.DISABLED
    private = DocumentAccess("kim", "D1", "M1", "private", doc.grants)
    why_not = explain(choi, private, Permission.READ, NOW)
    assert why_not.denial is Denial.NO_MATCHING_SOURCE
    assert [s.token for s in why_not.expired] == ["user:choi"]  # it would have, until yesterday
