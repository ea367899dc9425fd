"""Proof of no leak: whatever happens to the organisation and the documents, every
search and every document endpoint shows each user exactly what they may read.

A hypothesis state machine builds an organisation (ministries, departments, users
with roles), uploads small Korean text documents with visibilities and tags, and
then interleaves, in any order: uploads, ACL changes (visibility and grants with
expiries in the past, the near future and the far future, in UTC and KST), grant
revocations, tag changes, deletes, access policies created, changed and deleted
(a match on some of ministry, department, tag and visibility; a grant to a user,
department or ministry; the same expiries), user moves, role changes, disables
and re-enables, the worker's grant expiry, partial and full indexing, and checks.

Each check compares what the real stack answers with what the independent model
in `model.py` says (never with `auth.access`):

* `GET /search` for every user and a dozen queries (words that only some
  documents hold, so many terms are held only by documents the user may not
  read; pairs, exclusions, a phrase, filters, pages): the hit ids, `total`, the
  department/ministry/content_type facets and every highlight;
* every document endpoint for every user and document: a readable document
  answers with its own metadata and bytes; an unreadable, deleted or missing one
  answers 404, identically, on metadata, content, versions, version content, ACL
  and every write;

with searches placed both before the index has caught up with a change (the
catalog decides stale documents) and after (the indexed readers decide).

The fast leg drives the app in-process and drains the outbox itself; a smaller
leg runs the same machine against the real server over HTTP, its worker racing
the searches. `CROSSDOC_PROOF_EXAMPLES=N` runs N random (not derandomized)
examples of the fast leg instead, for a longer hunt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from functools import wraps
from typing import Any, ClassVar, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from indexer.analysis.jamo import initials
from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.extraction.base import TextExtractor
from indexer.extraction.native import NativeTikaExtractor
from tests.conftest import PASSWORD
from tests.property.drivers import InProcessStack, ServerStack, Stack
from tests.property.model import (
    CONTENT_TYPES,
    MANAGE,
    NONE,
    PERMISSIONS,
    READ,
    WRITE,
    DocModel,
    Expected,
    GrantModel,
    PolicyModel,
    QuerySpec,
    UserModel,
    World,
    expected_search,
    hidden_sources,
    permission,
    policies_in_force,
    readable,
    shared_with,
    suggestion_sources,
    trash_permission,
)

#: Nouns the analyser keeps whole, alone and next to each other (checked below),
#: so the model can tell which documents a word matches without an analyser.
VOCAB = (
    "사과",
    "바다",
    "기차",
    "우유",
    "하늘",
    "연필",
    "구름",
    "토끼",
    "여름",
    "겨울",
    "나무",
    "시계",
    "의자",
    "커피",
)
TAGS = ("ta", "tb", "tc")
VISIBILITIES = ("private", "department", "ministry", "government")
MATCH_KEYS = ("ministry", "department", "tag", "visibility")
#: Policies mostly last (or end in a day): those in force are what the proof needs most.
POLICY_EXPIRIES = ("never", "far", "never", "near", "past")
ROLE_SETS = (
    ("member",),
    ("member", "dept_admin"),
    ("member", "auditor"),
    ("member", "admin"),
    ("member", "admin", "dept_admin"),
)
KST = timezone(timedelta(hours=9))
MISSING_ID = "0" * 32
#: Folders made at most per example (each check reads every user's view of one).
MAX_FOLDERS = 6

#: Whether a policy id given out twice fails the proof at once (set to False to
#: see the searches themselves catch what a reused id does).
CHECK_POLICY_IDS = os.environ.get("CROSSDOC_PROOF_CHECK_POLICY_IDS", "1") != "0"

#: How many (user, query) search checks a run of the suite must make.
REQUIRED_SEARCH_CHECKS = 10_000
#: ... of which, made by a user an active access policy grants something.
REQUIRED_POLICY_SEARCH_CHECKS = 1_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tally:
    """What a leg checked (printed at the end of the run)."""

    search_checks: int = 0
    #: Searches by disabled users (401), not counted in `search_checks`.
    refused_search_checks: int = 0
    #: Search checks made while some document's index entry was stale on access.
    stale_search_checks: int = 0
    #: Search checks where the query's words matched readable-to-others documents
    #: that this user may not read (the terms a leak would show).
    hidden_search_checks: int = 0
    #: (user, document) pairs checked on the document endpoints.
    document_checks: int = 0
    unreadable_document_checks: int = 0
    #: Checks repeated because a grant expired while they ran.
    expiry_retries: int = 0
    #: Search checks by a user some active access policy grants access to a live document.
    policy_search_checks: int = 0
    #: ... of which the answer would differ without the policies (a policy decided it).
    policy_decided_search_checks: int = 0
    #: Policies created, changed and deleted through the API; documents retagged.
    policy_changes: int = 0
    #: Policies created right after the newest one was deleted (the id SQLite
    #: handed out again before migration 0007), with the deleted one's tokens in the index.
    policies_recreated: int = 0
    policies_recreated_over_indexed_tokens: int = 0
    retags: int = 0
    examples: int = 0
    #: (user, prefix) suggestion checks, and those where documents the user may not
    #: read held words with that prefix (what a leak through suggestions would show).
    suggest_checks: int = 0
    hidden_suggest_checks: int = 0
    #: ACL changes refused for naming no one or ending in the past (422).
    refused_grants: int = 0
    #: Directory lookups checked (names and codes of the organisation, nothing else).
    directory_checks: int = 0
    #: (user, list) checks of /me/documents, /me/shared, /me/recent and /trash, and the
    #: entries they showed; of those, lists where the model held documents the user may
    #: not read (or manage) that a leak would have shown.
    view_checks: int = 0
    view_entries: int = 0
    hidden_view_checks: int = 0
    #: Documents restored from the trash (and refused restores).
    restores: int = 0
    refused_restores: int = 0
    #: Milliseconds spent in those view checks (their share of the leg's time).
    view_ms: int = 0
    #: (user, folder) checks: the folder, its listing, the search filter on it.
    folder_checks: int = 0

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)

    def line(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


TALLIES = {
    "in-process": Tally(),
    "http": Tally(),
    "in-process-elasticsearch": Tally(),
    "http-elasticsearch": Tally(),
}


F = TypeVar("F", bound=Callable[..., Any])


def step(method: F) -> F:
    """Mark a rule as running, so that teardown knows whether the example failed mid-step."""

    @wraps(method)
    def wrapper(self: NoLeakMachine, *args: Any, **kwargs: Any) -> Any:
        self.in_step = True
        result = method(self, *args, **kwargs)
        self.in_step = False
        return result

    return wrapper  # type: ignore[return-value]


def _normalise(fragment: str) -> str:
    return " ".join(fragment.split())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class NoLeakMachine(RuleBasedStateMachine):
    """The organisation and its documents, driven through the API, checked against `World`."""

    leg: ClassVar[str]

    def make_stack(self) -> Stack:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.tally = TALLIES[self.leg]
        self.tally.examples += 1
        self.in_step = False
        self.world = World()
        self.doc_count = 0
        self.rotation = 0
        self.stack = self.make_stack()
        self.stack.sign_in("admin")
        self.world.users["admin"] = UserModel("admin", None, frozenset({"member", "admin"}))

    # -- helpers ------------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = self.stack.request(method, path, "admin", **kwargs)
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        return r

    @property
    def departments(self) -> list[str]:
        return sorted(self.world.departments)

    @property
    def ministries(self) -> list[str]:
        return sorted(set(self.world.departments.values()))

    @property
    def usernames(self) -> list[str]:
        return sorted(self.world.users)

    @property
    def changeable_users(self) -> list[str]:
        return [u for u in self.usernames if u != "admin"]  # `admin` is the test's hands

    def refresh_index_state(self) -> None:
        """Which documents the index holds text for (those indexed at least once)."""
        catalog = self.stack.services.catalog
        for rec in catalog.documents.get_many(list(self.world.docs), include_deleted=True):
            self.world.docs[rec.id].indexed_revision = rec.indexed_revision

    def on_document(
        self, user: UserModel, doc: DocModel, method: str, path: str, **kwargs: Any
    ) -> tuple[httpx.Response, set[int]]:
        """A request about `doc` as `user`, and the user's permission before and after it
        (a grant may end meanwhile: then either answer is right)."""
        before = permission(self.world, user, doc, utcnow())
        r = self.stack.request(method, path, user.name, **kwargs)
        return r, {before, permission(self.world, user, doc, utcnow())}

    # -- the organisation ---------------------------------------------------------------

    @initialize(data=st.data())
    def organisation(self, data: st.DataObject) -> None:
        self.in_step = True
        n_ministries = data.draw(st.integers(2, 3), label="ministries")
        for m in range(1, n_ministries + 1):
            ministry = f"M{m}"
            self.admin("POST", "/admin/ministries", json={"code": ministry, "name": ministry})
            for d in range(1, data.draw(st.integers(1, 2), label=f"departments of {ministry}") + 1):
                code = f"{ministry}-D{d}"
                self.admin(
                    "POST",
                    "/admin/departments",
                    json={"code": code, "name": code, "ministry": ministry},
                )
                self.world.departments[code] = ministry
        for i in range(data.draw(st.integers(4, 7), label="users")):
            name = f"u{i}"
            dept: str | None = data.draw(
                st.sampled_from(self.departments) | st.none(), label=f"department of {name}"
            )
            roles = data.draw(st.sampled_from(ROLE_SETS), label=f"roles of {name}")
            self.admin(
                "POST",
                "/admin/users",
                json={
                    "username": name,
                    "password": PASSWORD,
                    "display_name": name,
                    "department": dept,
                    "roles": list(roles),
                },
            )
            self.stack.sign_in(name)
            self.world.users[name] = UserModel(name, dept, frozenset(roles))
        for _ in range(data.draw(st.integers(3, 8), label="first documents")):
            self._upload(data)
        # A policy naming nothing would grant on every document: refused.
        r = self.stack.request(
            "POST",
            "/admin/policies",
            "admin",
            json={"name": "전부", "match": {}, "grant": {"principal": "dept:M1-D1"}},
        )
        assert r.status_code == 422, r.text
        for _ in range(data.draw(st.integers(1, 3), label="first policies")):
            self._create_policy(data)
        self.in_step = False

    @rule(data=st.data())
    @step
    def move_user(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.changeable_users), label="user")
        dept = data.draw(st.sampled_from(self.departments), label="to department")
        r = self.admin("PATCH", f"/admin/users/{name}", json={"department": dept})
        assert r.json()["ministry"] == self.world.departments[dept]
        self.world.users[name].department = dept

    @rule(data=st.data())
    @step
    def change_roles(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.changeable_users), label="user")
        roles = data.draw(st.sampled_from(ROLE_SETS), label="roles")
        self.admin("PATCH", f"/admin/users/{name}", json={"roles": list(roles)})
        self.world.users[name].roles = frozenset(roles)

    @rule(data=st.data())
    @step
    def disable_or_enable(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.changeable_users), label="user")
        user = self.world.users[name]
        self.admin("PATCH", f"/admin/users/{name}", json={"disabled": not user.disabled})
        user.disabled = not user.disabled
        if not user.disabled:
            # Disabling revoked every token issued so far, for good: sign in anew.
            self.stack.sign_in(name)

    # -- access policies ----------------------------------------------------------------

    @property
    def principals(self) -> list[str]:
        """Everyone a grant can name (all exist: policies refuse unknown principals)."""
        return (
            [f"user:{u}" for u in self.usernames]
            + [f"dept:{d}" for d in self.departments]
            + [f"ministry:{m}" for m in self.ministries]
        )

    def _draw_match(self, data: st.DataObject) -> tuple[tuple[str, str], ...]:
        """Some of ministry, department, tag, visibility (at least one), each a value in use."""
        keys = data.draw(
            st.lists(st.sampled_from(MATCH_KEYS), min_size=1, max_size=2, unique=True),
            label="match keys",
        )
        values = {
            "ministry": self.ministries,
            "department": self.departments,
            "tag": list(TAGS),
            "visibility": list(VISIBILITIES),
        }
        return tuple(
            (key, data.draw(st.sampled_from(values[key]), label=f"match {key}"))
            for key in sorted(keys)
        )

    def _check_policy_out(self, out: dict[str, Any], policy: PolicyModel) -> None:
        names = {v: k for k, v in PERMISSIONS.items()}
        assert out["id"] == policy.id
        assert out["match"] == dict(policy.match), out
        assert out["grant"] == {
            "principal": policy.grant.principal,
            "permission": names[policy.grant.permission],
        }, out
        expires = policy.grant.expires_at
        if expires is None:
            assert out["expires_at"] is None and out["active"] is True, out
        else:
            assert datetime.fromisoformat(out["expires_at"]) == expires, out
            if expires < utcnow() - timedelta(minutes=10):
                assert out["active"] is False, out

    def _policy_grant(self, data: st.DataObject) -> GrantModel:
        """A policy's grant: mostly to many (a department, a ministry), mostly lasting."""
        groups = [p for p in self.principals if not p.startswith("user:")]
        users = [p for p in self.principals if p.startswith("user:")]
        principal = data.draw(
            st.sampled_from(groups) | st.sampled_from(users), label="policy principal"
        )
        return self._grant(data, principal, POLICY_EXPIRIES)

    def _create_policy(self, data: st.DataObject) -> None:
        match = self._draw_match(data)
        grant = self._policy_grant(data)
        principal = grant.principal
        names = {v: k for k, v in PERMISSIONS.items()}
        body: dict[str, Any] = {
            "name": f"정책 {len(self.world.policies) + 1}",
            "match": dict(match),
            "grant": {"principal": principal, "permission": names[grant.permission]},
        }
        if grant.expires_at is not None:
            body["expires_at"] = grant.expires_at.isoformat()
        r = self.stack.request("POST", "/admin/policies", "admin", json=body)
        assert r.status_code == 201, r.text
        # The product's id, whatever it is: the model only checks it is a new one.
        policy = PolicyModel(r.json()["id"], match, grant)
        self._check_policy_out(r.json(), policy)
        if CHECK_POLICY_IDS:
            assert policy.id not in self.world.policy_ids_ever, (
                f"policy id {policy.id} handed out again"
            )
        self.world.policy_ids_ever.add(policy.id)
        self.world.policies.append(policy)
        self.tally.policy_changes += 1

    @rule(data=st.data())
    @step
    def create_policy(self, data: st.DataObject) -> None:
        self._create_policy(data)

    @precondition(lambda self: bool(self.world.policies))
    @rule(data=st.data())
    @step
    def change_policy(self, data: st.DataObject) -> None:
        """PATCH any of match, grant and expiry; `expires_at: null` removes the expiry."""
        i = data.draw(st.integers(0, len(self.world.policies) - 1), label="policy")
        old = self.world.policies[i]
        what = data.draw(
            st.lists(st.sampled_from(("match", "grant", "expiry")), min_size=1, unique=True),
            label="changes",
        )
        names = {v: k for k, v in PERMISSIONS.items()}
        body: dict[str, Any] = {}
        match, grant = old.match, old.grant
        if "match" in what:
            match = self._draw_match(data)
            body["match"] = dict(match)
        if "grant" in what or "expiry" in what:
            drawn = self._policy_grant(data)
            if "grant" in what:
                body["grant"] = {
                    "principal": drawn.principal,
                    "permission": names[drawn.permission],
                }
                grant = GrantModel(drawn.principal, drawn.permission, grant.expires_at)
            if "expiry" in what:
                body["expires_at"] = _iso(drawn.expires_at)
                grant = GrantModel(grant.principal, grant.permission, drawn.expires_at)
        r = self.stack.request("PATCH", f"/admin/policies/{old.id}", "admin", json=body)
        assert r.status_code == 200, r.text
        new = PolicyModel(old.id, match, grant)
        self._check_policy_out(r.json(), new)
        self.world.policies[i] = new
        self.tally.policy_changes += 1

    @precondition(lambda self: bool(self.world.policies))
    @rule(data=st.data())
    @step
    def delete_policy(self, data: st.DataObject) -> None:
        self._delete_policy(data.draw(st.integers(0, len(self.world.policies) - 1), label="policy"))

    def _delete_policy(self, i: int) -> None:
        gone = self.world.policies.pop(i)
        r = self.stack.request("DELETE", f"/admin/policies/{gone.id}", "admin")
        assert r.status_code == 204, r.text
        r = self.stack.request("GET", f"/admin/policies/{gone.id}", "admin")
        assert r.status_code == 404, r.text
        listed = self.admin("GET", "/admin/policies").json()
        assert [p["id"] for p in listed] == [p.id for p in self.world.policies], listed
        self.tally.policy_changes += 1

    # -- documents ----------------------------------------------------------------------

    def _upload(self, data: st.DataObject) -> None:
        uploaders = [
            u for u in self.world.users.values() if u.department is not None and not u.disabled
        ]
        if not uploaders:
            return
        owner = data.draw(st.sampled_from(uploaders), label="uploader")
        assert owner.department is not None
        department = owner.department
        kind = data.draw(st.sampled_from(("txt", "txt", "txt", "txt", "html", "empty")))
        body: tuple[str, ...] = ()
        if kind != "empty":
            body = tuple(
                data.draw(
                    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=5, unique=True),
                    label="words",
                )
            )
        title_word = data.draw(st.none() | st.sampled_from(VOCAB), label="title word")
        visibility = data.draw(st.sampled_from(VISIBILITIES), label="visibility")
        tags = tuple(data.draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)))
        self.doc_count += 1
        n = self.doc_count
        title = f"{title_word} T{n}" if title_word else f"T{n}"
        text = " ".join(body)
        if kind == "html":
            content = f"<html><body><p>{text}</p></body></html>".encode()
            filename = f"d{n}.html"
        else:
            content = text.encode()
            filename = f"d{n}.txt"
        r = self.stack.request(
            "POST",
            "/documents",
            owner.name,
            files={"file": (filename, content)},
            # Contents repeat (the vocabulary is small): each upload a document of its own.
            data={
                "title": title,
                "visibility": visibility,
                "tags": ",".join(tags),
                "allow_duplicate": "true",
            },
        )
        assert r.status_code == 202, r.text
        out = r.json()
        assert out["department"] == department
        assert out["ministry"] == self.world.departments[department]
        assert out["owner"] == owner.name
        self.world.docs[out["id"]] = DocModel(
            id=out["id"],
            owner=owner.name,
            department=department,
            ministry=self.world.departments[department],
            visibility=visibility,
            tags=tags,
            title=title,
            title_words=(title_word,) if title_word else (),
            filename=filename,
            body_words=body,
            kind=kind,
            content=content,
            created_at=datetime.fromisoformat(out["created_at"]),
        )
        if not self.stack.manual_indexing:
            # The server's worker indexes it; wait, so the model knows the index has it.
            self.stack.drain(None)
            self.refresh_index_state()

    @rule(data=st.data())
    @step
    def upload(self, data: st.DataObject) -> None:
        self._upload(data)

    def settled_permission(self, user: UserModel, doc: DocModel) -> int | None:
        """The user's permission if no grant of the near future decides it, else None.

        What the machine draws next, and what its model becomes, must not depend on
        the clock: hypothesis replays the choices of earlier examples and stops at
        any that turn out differently. Grants made to expire "in the past" ended an
        hour before they were made, "far" ones end in a day, and "near" ones within
        two seconds: compare the permission with the near ones all running and all
        ended.
        """
        now = utcnow()
        running = permission(self.world, user, doc, now - timedelta(minutes=10))
        ended = permission(self.world, user, doc, now + timedelta(hours=2))
        return running if running == ended else None

    def _actor(self, data: st.DataObject, doc: DocModel, need: int = MANAGE) -> UserModel:
        """Mostly someone who holds `need` on the document; sometimes anyone (who must be
        refused unless they hold it too)."""
        users = [self.world.users[u] for u in self.usernames]
        able = [u for u in users if (self.settled_permission(u, doc) or NONE) >= need]
        choice = st.sampled_from(users)
        if able:
            choice = st.sampled_from(able) | choice
        return data.draw(choice, label="actor")

    def _expect_refusal(
        self, user: UserModel, r: httpx.Response, levels: set[int], need: int = MANAGE
    ) -> bool:
        """Check a change's answer against the model; True when it was allowed."""
        if user.disabled:
            assert r.status_code == 401, r.text
            return False
        if r.status_code in (200, 204):
            assert any(level >= need for level in levels), (
                f"{user.name} changed a document without permission {need} ({levels})"
            )
            return True
        if r.status_code == 404:
            assert NONE in levels, f"{user.name} got 404 on a document it may read ({levels})"
        else:
            assert r.status_code == 403, r.text
            assert any(READ <= level < need for level in levels), (user.name, levels)
        return False

    def _put_acl(
        self, doc: DocModel, actor: UserModel, visibility: str, grants: tuple[GrantModel, ...]
    ) -> None:
        names = {v: k for k, v in PERMISSIONS.items()}
        body = {
            "visibility": visibility,
            "grants": [
                {
                    "principal": g.principal,
                    "permission": names[g.permission],
                    "expires_at": _iso(g.expires_at),
                }
                for g in grants
            ],
        }
        if self.settled_permission(actor, doc) is None:
            return  # whether this is allowed depends on a grant ending about now
        # A new or changed grant naming no one, or ending in the past, is refused
        # (422); one the catalog still holds unchanged is kept as it is.
        held = {
            (g.principal, g.permission, g.expires_at)
            for g in self.stack.services.catalog.documents.get(doc.id, include_deleted=True).grants
        }
        fresh = [g for g in grants if (g.principal, names[g.permission], g.expires_at) not in held]
        before = utcnow()
        r, levels = self.on_document(actor, doc, "PUT", f"/documents/{doc.id}/acl", json=body)
        after = utcnow()

        def refused(now: datetime) -> bool:
            return any(
                (g.principal.startswith("user:") and g.principal[5:] not in self.world.users)
                or (g.expires_at is not None and g.expires_at <= now)
                for g in fresh
            )

        if r.status_code == 422 and not actor.disabled:
            assert any(level >= MANAGE for level in levels), r.text
            assert refused(after), f"refused a valid ACL: {r.text} {body}"
            assert r.json()["error"]["code"] in ("unknown_grantee", "expired_grant"), r.text
            self.tally.refused_grants += 1
            return  # nothing changed
        if r.status_code == 200:
            assert not refused(before), f"accepted an ACL it must refuse: {body}"
        if self._expect_refusal(actor, r, levels):
            assert r.json()["visibility"] == visibility
            assert [g["principal"] for g in r.json()["grants"]] == [g.principal for g in grants]
            doc.visibility = visibility
            doc.grants = grants

    def _grant(
        self,
        data: st.DataObject,
        principal: str,
        expiries: tuple[str, ...] = ("never", "past", "near", "far"),
    ) -> GrantModel:
        perm = data.draw(st.sampled_from(("read", "write", "manage")), label="permission")
        when = data.draw(st.sampled_from(expiries), label="expiry")
        zone = data.draw(st.sampled_from((UTC, KST)), label="time zone")
        expires: datetime | None = None
        if when == "past":
            expires = utcnow() - timedelta(hours=1)
        elif when == "near":
            # Ends while the example runs: first indexed as a reader, then stale.
            seconds = data.draw(st.floats(0.05, 1.5), label="seconds left")
            expires = utcnow() + timedelta(seconds=seconds)
        elif when == "far":
            expires = utcnow() + timedelta(days=1)
        if expires is not None:
            expires = expires.astimezone(zone)
        return GrantModel(principal, PERMISSIONS[perm], expires)

    @precondition(lambda self: bool(self.world.docs))
    @rule(data=st.data())
    @step
    def change_acl(self, data: st.DataObject) -> None:
        doc = self.world.docs[data.draw(st.sampled_from(list(self.world.docs)), label="doc")]
        actor = self._actor(data, doc)
        visibility = data.draw(st.sampled_from(VISIBILITIES), label="visibility")
        principals = (
            [f"user:{u}" for u in self.usernames]
            + [f"dept:{d}" for d in self.departments]
            + [f"ministry:{m}" for m in self.ministries]
            + ["user:nobody"]
        )
        chosen = data.draw(
            st.lists(st.sampled_from(principals), max_size=3, unique=True), label="grantees"
        )
        grants = tuple(self._grant(data, p) for p in chosen)
        self._put_acl(doc, actor, visibility, grants)

    @precondition(lambda self: any(d.grants for d in self.world.docs.values()))
    @rule(data=st.data())
    @step
    def revoke_grant(self, data: st.DataObject) -> None:
        ids = [i for i, d in self.world.docs.items() if d.grants]  # in upload order
        doc = self.world.docs[data.draw(st.sampled_from(ids), label="doc")]
        gone = data.draw(st.integers(0, len(doc.grants) - 1), label="grant revoked")
        actor = self._actor(data, doc)
        rest = doc.grants[:gone] + doc.grants[gone + 1 :]
        self._put_acl(doc, actor, doc.visibility, rest)
        self.check_views()

    @precondition(lambda self: bool(self.world.docs))
    @rule(data=st.data())
    @step
    def retag_document(self, data: st.DataObject) -> None:
        """PATCH a document's tags (permission `write`): policies matching tags follow at once."""
        doc = self.world.docs[data.draw(st.sampled_from(list(self.world.docs)), label="doc")]
        actor = self._actor(data, doc, WRITE)
        tags = tuple(data.draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)))
        if self.settled_permission(actor, doc) is None:
            return  # whether this is allowed depends on a grant ending about now
        r, levels = self.on_document(
            actor, doc, "PATCH", f"/documents/{doc.id}", json={"tags": list(tags)}
        )
        if not self._expect_refusal(actor, r, levels, WRITE):
            return
        assert tuple(r.json()["tags"]) == tags, r.text
        (rec,) = self.stack.services.catalog.documents.get_many([doc.id])
        if not doc.tag_history:
            doc.tag_history = ((0, doc.tags),)
        doc.tag_history += ((rec.revision, tags),)
        doc.tags = tags
        self.tally.retags += 1
        if not self.stack.manual_indexing:
            # Over HTTP the worker races the searches, and search filters by the
            # indexed tags: wait, so the model knows which tags the index holds.
            self.stack.drain(None)
            self.refresh_index_state()

    @precondition(lambda self: bool(self.world.docs))
    @rule(data=st.data())
    @step
    def delete_document(self, data: st.DataObject) -> None:
        doc = self.world.docs[data.draw(st.sampled_from(list(self.world.docs)), label="doc")]
        actor = self._actor(data, doc)
        if self.settled_permission(actor, doc) is None:
            return  # whether this is allowed depends on a grant ending about now
        r, levels = self.on_document(actor, doc, "DELETE", f"/documents/{doc.id}")
        if self._expect_refusal(actor, r, levels):
            doc.deleted = True
            catalog = self.stack.services.catalog
            revision = catalog.documents.get(doc.id, include_deleted=True).revision
            doc.dead_spans += ((revision, None),)

    # -- the index catching up ----------------------------------------------------------

    @rule(batch=st.integers(1, 3))
    @step
    def index_some(self, batch: int) -> None:
        self.stack.drain(batch)
        self.refresh_index_state()

    @rule()
    @step
    def index_all(self) -> None:
        self.stack.drain(None)
        self.refresh_index_state()

    # Preconditions depend on the model only (never on the clock or the catalog):
    # hypothesis replays rule choices and refuses preconditions that change.
    @precondition(
        lambda self: any(g.expires_at for d in self.world.docs.values() for g in d.grants)
    )
    @rule()
    @step
    def expire_grants(self) -> None:
        """The worker's periodic chore: expired grants are deleted and their documents queued."""
        self.stack.services.catalog.documents.expire_grants()

    # -- checks -------------------------------------------------------------------------

    def _draw_queries(self, data: st.DataObject) -> list[QuerySpec]:
        def words(n: int, label: str) -> tuple[str, ...]:
            return tuple(
                data.draw(
                    st.lists(st.sampled_from(VOCAB), min_size=n, max_size=n, unique=True),
                    label=label,
                )
            )

        queries = [QuerySpec()]
        queries += [QuerySpec(words=(w,)) for w in words(4, "words")]
        queries.append(QuerySpec(words=words(2, "both words")))
        a, b = words(2, "word, excluded")
        queries.append(QuerySpec(words=(a,), excluded=(b,)))
        bodies = [d.body_words for d in self.world.docs.values() if len(d.body_words) >= 2]
        from_document: bool = data.draw(st.booleans(), label="phrase from a document")
        if bodies and from_document:
            body = data.draw(st.sampled_from(bodies), label="phrase source")
            i = data.draw(st.integers(0, len(body) - 2), label="phrase start")
            phrase = body[i : i + 2]
        else:
            phrase = words(2, "phrase")
        queries.append(QuerySpec(phrase=phrase))
        maybe_word = st.sampled_from(((), *((w,) for w in VOCAB)))
        queries.append(
            QuerySpec(
                words=data.draw(maybe_word, label="word, with department"),
                department=data.draw(st.sampled_from(self.departments), label="department"),
            )
        )
        queries.append(
            QuerySpec(
                words=data.draw(maybe_word, label="word, with ministry"),
                ministry=data.draw(st.sampled_from(self.ministries), label="ministry"),
                content_type=data.draw(
                    st.none() | st.sampled_from(sorted(set(CONTENT_TYPES.values()))),
                    label="content type",
                ),
            )
        )
        queries.append(
            QuerySpec(
                words=data.draw(maybe_word, label="word, with tag"),
                tag=data.draw(st.sampled_from(TAGS), label="tag"),
            )
        )
        if self.world.docs:
            # A creation-time range from one document's instant (inclusive) to another's
            # (exclusive), so both edges fall exactly on documents.
            times = st.none() | st.sampled_from(
                sorted(d.created_at for d in self.world.docs.values())
            )
            queries.append(
                QuerySpec(
                    words=data.draw(maybe_word, label="word, with dates"),
                    created_from=data.draw(times, label="from"),
                    created_to=data.draw(times, label="to"),
                )
            )
        queries.append(
            QuerySpec(
                words=data.draw(maybe_word, label="word, paged"),
                sort=data.draw(st.sampled_from(("oldest", "newest")), label="sort"),
                size=2,
                page=data.draw(st.integers(1, 3), label="page"),
            )
        )
        return queries

    def _check_search(self, user: UserModel, query: QuerySpec, *, direct: bool) -> None:
        search = self.stack.search_direct if direct else self.stack.search
        for _ in range(5):
            before = utcnow()
            status, body = search(user.name, query.params)
            after = utcnow()
            if user.disabled:
                assert status == 401, body
                self.tally.refused_search_checks += 1
                return
            expected = expected_search(self.world, user, query, before)
            if expected != expected_search(self.world, user, query, after):
                self.tally.expiry_retries += 1  # a grant ended during the request
                continue
            assert status == 200, body
            self._compare(user, query, expected, body)
            self.tally.search_checks += 1
            self.tally.hidden_search_checks += expected.hidden > 0
            if policies_in_force(self.world, user, before):
                self.tally.policy_search_checks += 1
                policies, self.world.policies = self.world.policies, []
                try:
                    without = expected_search(self.world, user, query, before)
                finally:
                    self.world.policies = policies
                self.tally.policy_decided_search_checks += without != expected
            return
        raise AssertionError("grants kept expiring during the same search")

    def _compare(
        self, user: UserModel, query: QuerySpec, expected: Expected, got: dict[str, Any]
    ) -> None:
        where = f"user {user.name} ({user}), q={query.params}"
        ids = [h["id"] for h in got["hits"]]
        assert len(set(ids)) == len(ids), f"{where}: duplicate hits {ids}"
        if expected.ordered:
            assert tuple(ids) == expected.ids, self._explain(where, user, expected.ids, ids)
        else:
            assert set(ids) == set(expected.ids), self._explain(where, user, expected.ids, ids)
        assert got["total"] == expected.total, f"{where}: total {got['total']} != {expected.total}"
        facets = {
            name: {b["value"]: b["count"] for b in buckets}
            for name, buckets in got["facets"].items()
        }
        assert facets == expected.facets, f"{where}: facets {facets} != {expected.facets}"
        for hit in got["hits"]:
            doc = self.world.docs[hit["id"]]
            assert (hit["department"], hit["ministry"], hit["content_type"]) == (
                doc.department,
                doc.ministry,
                doc.content_type,
            ), f"{where}: hit {hit}"
            assert (hit["title"], hit["filename"]) == (doc.title, doc.filename), hit
            marks = [_normalise(h) for h in hit["highlights"]]
            assert marks == expected.highlights[doc.id], (
                f"{where}: highlights of {doc.id} {marks} != {expected.highlights[doc.id]}"
            )

    def _explain(self, where: str, user: UserModel, want: tuple[str, ...], got: list[str]) -> str:
        now = utcnow()
        stale = self.stack.services.catalog.documents.stale_access_ids()
        lines = [f"{where}: hits {got} != expected {list(want)}"]
        for doc_id in sorted(set(want) ^ set(got)):
            doc = self.world.docs.get(doc_id)
            if doc is None:
                lines.append(f"  {doc_id}: not a document of this example")
                continue
            lines.append(
                f"  {doc_id}: may read={permission(self.world, user, doc, now)} "
                f"stale in index={doc_id in stale} {doc}"
            )
        return "\n".join(lines)

    def check_searches(self, queries: list[QuerySpec], *, direct: bool) -> None:
        stale = bool(self.stack.services.catalog.documents.stale_access_ids())
        before = self.tally.search_checks
        for name in self.usernames:
            for query in queries:
                self._check_search(self.world.users[name], query, direct=direct)
        if stale:
            self.tally.stale_search_checks += self.tally.search_checks - before

    @invariant()
    @step
    def every_user_searches_after_every_step(self) -> None:
        """Right after each change (the index not caught up yet), a few words for everyone."""
        self.rotation += 1
        k = self.rotation * 3
        word = VOCAB[k % len(VOCAB)]
        queries = [
            QuerySpec(),
            QuerySpec(words=(word,)),
            QuerySpec(words=(VOCAB[(k + 1) % len(VOCAB)],)),
            QuerySpec(words=(word,), excluded=(VOCAB[(k + 2) % len(VOCAB)],)),
        ]
        self.check_searches(queries, direct=True)

    @rule(data=st.data())
    @step
    def search_as_everyone(self, data: st.DataObject) -> None:
        queries = self._draw_queries(data)
        self.check_searches(queries, direct=True)
        # Suggestions for what those queries type (no draws of their own, so the
        # examples explored stay those of the searches): a first syllable, a
        # whole word, a title's start (`t`), and initials (ㅅㄱ).
        words = [w for q in queries for w in q.words][:2] or [VOCAB[0]]
        self.check_suggestions([words[0][0], words[-1], "t", initials(words[0])])

    def check_suggestions(self, prefixes: list[str]) -> None:
        """Every suggestion shown to a user occurs in a document they may read, and
        counts no more documents than those that hold it."""
        for name in self.usernames:
            user = self.world.users[name]
            for prefix in prefixes:
                before = utcnow()
                status, body = self.stack.suggest(name, prefix)
                after = utcnow()
                if user.disabled:
                    assert status == 401, body
                    continue
                assert status == 200, body
                sources = suggestion_sources(self.world, user, before)
                if sources != suggestion_sources(self.world, user, after):
                    continue  # a grant ended during the request
                for suggestion in body["suggestions"]:
                    text = suggestion["text"].lower()
                    holding = sum(text in source for source in sources)
                    assert holding > 0, f"{name} ({user}) was suggested {text!r} for {prefix!r}"
                    assert suggestion["count"] <= holding, (
                        f"{name} ({user}): {text!r} counted {suggestion['count']} documents, "
                        f"only {holding} readable hold it"
                    )
                self.tally.suggest_checks += 1
                self.tally.hidden_suggest_checks += any(
                    f" {prefix}" in f" {source}"
                    for source in hidden_sources(self.world, user, before)
                )

    @staticmethod
    def _endpoints(doc_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every document endpoint, with a valid body where it takes one."""
        base = f"/documents/{doc_id}"
        return [
            ("GET", base, {}),
            ("GET", f"{base}/content", {}),
            ("GET", f"{base}/versions", {}),
            ("GET", f"{base}/versions/1/content", {}),
            ("GET", f"{base}/acl", {}),
            ("PUT", f"{base}/acl", {"json": {"visibility": "government", "grants": []}}),
            ("PATCH", base, {"json": {"title": "바뀐 제목"}}),
            ("PUT", f"{base}/content", {"files": {"file": ("x.txt", "침입".encode())}}),
            ("DELETE", base, {}),
        ]

    #: The personal views and the trash, each as one page of everything (max page size).
    VIEWS = ("/me/documents", "/me/shared", "/me/recent", "/trash")

    def _view_expectation(
        self, view: str, user: UserModel, now: datetime
    ) -> tuple[set[str], set[str]]:
        """(what the list must show, what it may show) for `user` at `now`."""
        docs = list(self.world.docs.values())
        if view == "/me/documents":
            must = {d.id for d in docs if not d.deleted and d.owner == user.name}
            return must, must
        if view == "/me/shared":
            must = {d.id for d in docs if shared_with(self.world, user, d, now)}
            return must, must
        if view == "/me/recent":
            # Which of them the user opened is the product's record; all it may show
            # is what the user may read now.
            return set(), {d.id for d in docs if readable(self.world, user, d, now)}
        must = {
            d.id for d in docs if d.deleted and trash_permission(self.world, user, d, now) >= MANAGE
        }
        return must, must

    def check_views(self) -> None:
        """Every user's personal views and trash: never a document (or its title) the
        user may not read (the trash: manage), and exactly what the model lists where
        the model knows (the clock deciding nothing during the request)."""
        started = time.monotonic()
        try:
            self._check_views()
        finally:
            self.tally.view_ms += int((time.monotonic() - started) * 1000)

    def _check_views(self) -> None:
        for name in self.usernames:
            user = self.world.users[name]
            for view in self.VIEWS:
                before = utcnow()
                r = self.stack.request("GET", view, name, params={"size": 100})
                after = utcnow()
                if user.disabled:
                    assert r.status_code == 401, r.text
                    continue
                assert r.status_code == 200, (view, r.text)
                body = r.json()
                items = body["items"]
                got = [i.get("document", i) for i in items]
                ids = [d["id"] for d in got]
                assert len(ids) == len(set(ids)) == body["total"], (view, body)
                must_before, may_before = self._view_expectation(view, user, before)
                must_after, may_after = self._view_expectation(view, user, after)
                allowed = may_before | may_after
                leaked = [i for i in ids if i not in allowed]
                assert not leaked, f"{name} {view} shows {leaked} it may not see: {body}"
                assert must_before & must_after <= set(ids), (name, view, ids, must_before)
                for doc in got:
                    assert doc["title"] == self.world.docs[doc["id"]].title, (view, doc)
                if view == "/trash":
                    by_id = {i["document"]["id"]: i for i in items}
                    for doc_id in ids:
                        assert by_id[doc_id]["deleted_at"] is not None, by_id[doc_id]
                self.tally.view_checks += 1
                self.tally.view_entries += len(ids)
                # Documents of its kind (live; in the trash) the user may not see.
                hidden = [
                    d
                    for d in self.world.docs.values()
                    if d.deleted == (view == "/trash") and d.id not in allowed
                ]
                self.tally.hidden_view_checks += bool(hidden)

    def check_documents(self, pick: Callable[[int], int]) -> None:
        """Every user against every document: metadata, and one more endpoint chosen by
        `pick` (each call returns an index below its argument) for each pair; then the
        personal views and the trash."""
        self.check_views()
        missing = [
            self.stack.request(method, path, "admin", **kwargs)
            for method, path, kwargs in self._endpoints(MISSING_ID)
        ]
        assert {r.status_code for r in missing} == {404}, [r.text for r in missing]
        for name in self.usernames:
            user = self.world.users[name]
            if user.disabled:
                r = self.stack.request("GET", f"/documents/{MISSING_ID}", name)
                assert r.status_code == 401, r.text
                continue
            for doc in self.world.docs.values():
                # Drawn first, whatever the clock makes of this pair (see settled_permission).
                which = pick(3 * 8)
                r, levels = self.on_document(user, doc, "GET", f"/documents/{doc.id}")
                if len(levels) > 1:
                    continue  # a grant ended during the request
                level = levels.pop()
                self.tally.document_checks += 1
                if level >= READ:
                    assert r.status_code == 200, f"{name} may read {doc.id}: {r.text}"
                    self._check_readable(user, doc, r.json(), which % 3)
                    continue
                self.tally.unreadable_document_checks += 1
                endpoints = self._endpoints(doc.id)
                for i in (0, 1 + which % (len(endpoints) - 1)):
                    method, path, kwargs = endpoints[i]
                    if i:
                        r, levels = self.on_document(user, doc, method, path, **kwargs)
                        assert levels == {NONE}, levels  # an unreadable document stays so
                    like = missing[i]
                    assert (r.status_code, r.json()) == (like.status_code, like.json()), (
                        f"{name} {method} {path} of a document it may not read: "
                        f"{r.status_code} {r.text}; for a missing one: {like.text}"
                    )

    def _check_readable(
        self, user: UserModel, doc: DocModel, meta: dict[str, Any], which: int
    ) -> None:
        assert (meta["owner"], meta["department"], meta["ministry"]) == (
            doc.owner,
            doc.department,
            doc.ministry,
        )
        assert (meta["visibility"], tuple(meta["tags"]), meta["title"]) == (
            doc.visibility,
            doc.tags,
            doc.title,
        )
        base = f"/documents/{doc.id}"
        if which == 0:
            r, levels = self.on_document(user, doc, "GET", f"{base}/content")
            if NONE not in levels:
                assert r.status_code == 200 and r.content == doc.content, r.status_code
        elif which == 1:
            r, levels = self.on_document(user, doc, "GET", f"{base}/versions")
            if NONE not in levels:
                assert r.status_code == 200 and [v["version"] for v in r.json()] == [1], r.text
        else:
            r, levels = self.on_document(user, doc, "GET", f"{base}/acl")
            if len(levels) == 1:
                level = levels.pop()
                want = 200 if level >= MANAGE else 403 if level >= READ else 404
                assert r.status_code == want, (user.name, doc.id, r.text)
                if r.status_code == 200:
                    assert r.json()["visibility"] == doc.visibility

    @rule(data=st.data())
    @step
    def check_every_document(self, data: st.DataObject) -> None:
        self.check_documents(lambda n: data.draw(st.integers(0, n - 1)))

    def teardown(self) -> None:
        try:
            if not self.in_step:
                # The last word of every example: all words, before and after the
                # index has caught up with everything that happened.
                final = [QuerySpec(), *(QuerySpec(words=(w,)) for w in VOCAB)]
                self.check_searches(final, direct=False)
                self.stack.drain(None)
                self.refresh_index_state()
                self.check_searches(final, direct=True)
                self.check_suggestions([w[0] for w in VOCAB[::3]])
                turn = iter(range(1_000_000))
                self.check_documents(lambda n: next(turn) % n)
                # Then the trash: each deleted document restored by someone who may
                # manage it (after a refusal to someone who may not), re-indexed, and
                # every search, list and document checked again.
                restored = self.restore_deleted()
                if restored:
                    self.stack.drain(None)
                    self.refresh_index_state()
                    words = sorted({w for d in restored for w in d.words})[:3]
                    self.check_searches(
                        [QuerySpec(), *(QuerySpec(words=(w,)) for w in words)], direct=True
                    )
                    self.check_views()
        finally:
            self.stack.close()

    def settled_trash_permission(self, user: UserModel, doc: DocModel) -> int | None:
        """As `settled_permission`, for a deleted document (who may restore it)."""
        now = utcnow()
        running = trash_permission(self.world, user, doc, now - timedelta(minutes=10))
        ended = trash_permission(self.world, user, doc, now + timedelta(hours=2))
        return running if running == ended else None

    def restore_deleted(self) -> list[DocModel]:
        """POST /documents/{id}/restore for every deleted document (no draws: the examples
        explored stay those of the rules): first by a signed-in user who may not manage
        it (404, as a missing document), then by the first who may (200). Returns the
        documents restored."""
        restored: list[DocModel] = []
        missing = None
        for doc in [d for d in self.world.docs.values() if d.deleted]:
            users = [u for u in (self.world.users[n] for n in self.usernames) if not u.disabled]
            levels = {u.name: self.settled_trash_permission(u, doc) for u in users}
            refused = next((u for u in users if levels[u.name] in (NONE, READ, WRITE)), None)
            if refused is not None:
                if missing is None:
                    missing = self.stack.request(
                        "POST", f"/documents/{MISSING_ID}/restore", refused.name
                    )
                r = self.stack.request("POST", f"/documents/{doc.id}/restore", refused.name)
                assert (r.status_code, r.json()) == (404, missing.json()), r.text
                self.tally.refused_restores += 1
            manager = next((u for u in users if levels[u.name] == MANAGE), None)
            if manager is None:
                continue
            r = self.stack.request("POST", f"/documents/{doc.id}/restore", manager.name)
            assert r.status_code == 200, (manager.name, doc.id, r.text)
            assert r.json()["title"] == doc.title
            doc.deleted = False
            revision = self.stack.services.catalog.documents.get(doc.id).revision
            *rest, (deleted_at_revision, _) = doc.dead_spans
            doc.dead_spans = (*rest, (deleted_at_revision, revision))
            self.tally.restores += 1
            restored.append(doc)
        return restored


class InProcessMachine(NoLeakMachine):
    leg = "in-process"
    extractor: ClassVar[TextExtractor]

    def make_stack(self) -> Stack:
        return InProcessStack(self.extractor)

    def __init__(self) -> None:
        super().__init__()
        #: Folders made through the API: id -> (department, parent id or None, name).
        self.folders: dict[str, tuple[str, str | None, str]] = {}
        #: Where each filed document is (absent: the department's top level).
        self.filed: dict[str, str] = {}

    # Only in this leg: the HTTP leg's few steps keep the rules (and draws) they had.

    # -- folders (for finding only: they never grant access, and their names are
    # seen by the department and administrators, or as the path of a readable document)

    def sees_tree(self, user: UserModel, department: str) -> bool:
        if user.disabled:
            return False
        return "admin" in user.roles or user.department == department

    def folder_ancestry(self, folder_id: str) -> list[str]:
        chain = [folder_id]
        while (parent := self.folders[chain[-1]][1]) is not None:
            chain.append(parent)
        return chain[::-1]

    def folder_path(self, folder_id: str) -> str:
        return "/" + "/".join(self.folders[f][2] for f in self.folder_ancestry(folder_id))

    def in_subtree(self, folder_id: str, top: str) -> bool:
        return top in self.folder_ancestry(folder_id)

    @precondition(lambda self: len(self.folders) < MAX_FOLDERS)
    @rule(data=st.data())
    @step
    def make_folder(self, data: st.DataObject) -> None:
        user = self.world.users[data.draw(st.sampled_from(self.usernames), label="user")]
        department = data.draw(st.sampled_from(self.departments), label="folder department")
        mine = [f for f, (d, _, _) in self.folders.items() if d == department]
        parent = data.draw(st.none() | st.sampled_from(mine) if mine else st.none())
        name = f"[폴더{len(self.folders) + 1}]"
        body = {"name": name, "department": department, "parent": parent}
        r = self.stack.request("POST", "/folders", user.name, json=body)
        if user.disabled:
            assert r.status_code == 401, r.text
        elif self.sees_tree(user, department):
            assert r.status_code == 201, r.text
            self.folders[r.json()["id"]] = (department, parent, name)
            assert r.json()["path"] == self.folder_path(r.json()["id"])
        else:
            assert r.status_code == (404 if parent else 403), r.text
            if parent is not None:
                assert self.folders[parent][2] not in r.text

    @precondition(lambda self: bool(self.folders))
    @rule(data=st.data())
    @step
    def move_folder(self, data: st.DataObject) -> None:
        user = self.world.users[data.draw(st.sampled_from(self.usernames), label="user")]
        folder = data.draw(st.sampled_from(sorted(self.folders)), label="folder")
        department, _, name = self.folders[folder]
        same = sorted(f for f, (d, _, _) in self.folders.items() if d == department)
        parent = data.draw(st.none() | st.sampled_from(same), label="new parent")
        r = self.stack.request("PATCH", f"/folders/{folder}", user.name, json={"parent": parent})
        if user.disabled:
            assert r.status_code == 401, r.text
        elif not self.sees_tree(user, department):
            assert r.status_code == 404, r.text
            assert name not in r.text
        elif parent is not None and self.in_subtree(parent, folder):
            assert r.status_code == 409, r.text  # into itself or under it
        else:
            assert r.status_code == 200, r.text
            self.folders[folder] = (department, parent, name)

    @precondition(lambda self: bool(self.folders) and bool(self.world.docs))
    @rule(data=st.data())
    @step
    def file_document(self, data: st.DataObject) -> None:
        doc = self.world.docs[data.draw(st.sampled_from(sorted(self.world.docs)), label="doc")]
        user = self._actor(data, doc, need=WRITE)
        theirs = sorted(f for f, (d, _, _) in self.folders.items() if d == doc.department)
        others = sorted(f for f, (d, _, _) in self.folders.items() if d != doc.department)
        folder = data.draw(
            st.none() | st.sampled_from(theirs or others) | st.sampled_from(others or theirs),
            label="file in",
        )
        path = f"/documents/{doc.id}/folder"
        r, levels = self.on_document(user, doc, "PATCH", path, json={"folder": folder})
        if user.disabled:
            assert r.status_code == 401, r.text
            return
        sees = self.sees_tree(user, doc.department)
        ok = folder is None or self.folders[folder][0] == doc.department
        if r.status_code == 200:
            assert max(levels) >= WRITE and sees and ok, (r.text, levels)
            if folder is None:
                self.filed.pop(doc.id, None)
            else:
                self.filed[doc.id] = folder
                assert r.json()["folder"]["path"] == self.folder_path(folder)
        elif r.status_code == 404:
            assert min(levels) < READ or (max(levels) >= WRITE and sees and not ok), r.text
        else:
            assert r.status_code == 403, r.text
            assert max(levels) >= READ and (min(levels) < WRITE or not sees), (r.text, levels)
        if folder is not None and not self.sees_tree(user, self.folders[folder][0]):
            assert self.folders[folder][2] not in r.text

    def readable_now(self, user: UserModel) -> set[str] | None:
        """The documents `user` may read, or None if a grant ends meanwhile."""
        before, after = utcnow() - timedelta(seconds=5), utcnow() + timedelta(seconds=30)
        sets = [
            {d.id for d in self.world.docs.values() if permission(self.world, user, d, t) >= READ}
            for t in (before, after)
        ]
        return sets[0] if sets[0] == sets[1] else None

    @precondition(lambda self: bool(self.folders))
    @rule(data=st.data())
    @step
    def check_folders(self, data: st.DataObject) -> None:
        """Every user, every folder: the folder, its listing and the search filter show
        only documents the user may read, and no folder name they may not see; so do
        the paths on the documents they may read (those under one folder drawn)."""
        checked = data.draw(st.sampled_from(sorted(self.folders)), label="folder checked")
        self.stack.drain(None)  # the folder filter reads the index: let it catch up
        self.refresh_index_state()
        for name in self.usernames:
            user = self.world.users[name]
            readable = self.readable_now(user)
            if readable is None:
                continue  # a grant is ending: the next check decides
            seen_paths = {
                f for d in readable if d in self.filed for f in self.folder_ancestry(self.filed[d])
            }
            hidden = {
                self.folders[f][2]
                for f in self.folders
                if not self.sees_tree(user, self.folders[f][0]) and f not in seen_paths
            }
            for folder, (department, _, _) in self.folders.items():
                subtree = {d for d, f in self.filed.items() if self.in_subtree(f, folder)}
                want = sorted(subtree & readable)
                answers = [
                    self.stack.request("GET", f"/folders/{folder}", name),
                    self.stack.request(
                        "GET",
                        f"/folders/{folder}/documents",
                        name,
                        params={"subtree": True, "size": 100},
                    ),
                    self.stack.request(
                        "GET", "/search", name, params={"folder": folder, "size": 100}
                    ),
                ]
                if user.disabled:
                    assert {r.status_code for r in answers} == {401}
                    continue
                for r in answers:
                    for secret in hidden:
                        assert secret not in r.text, f"{name} ({user}) saw {secret}: {r.text}"
                meta, listing, search = answers
                assert search.status_code == 200, search.text
                hits = sorted(h["id"] for h in search.json()["hits"])
                assert hits == want and search.json()["total"] == len(want), (
                    name,
                    folder,
                    hits,
                    want,
                )
                for hit in search.json()["hits"]:
                    assert hit["folder"]["path"] == self.folder_path(self.filed[hit["id"]]), hit
                if self.sees_tree(user, department):
                    assert meta.status_code == listing.status_code == 200, listing.text
                    assert meta.json()["path"] == self.folder_path(folder)
                    got = sorted(d["id"] for d in listing.json()["documents"])
                    assert got == want and listing.json()["total"] == len(want), (name, got, want)
                else:
                    assert meta.status_code == listing.status_code == 404, listing.text
                self.tally.folder_checks += 1
            for doc_id in sorted(
                d for d in readable & set(self.filed) if self.in_subtree(self.filed[d], checked)
            ):
                r = self.stack.request("GET", f"/documents/{doc_id}", name)
                assert r.status_code == 200, r.text
                assert r.json()["folder"]["path"] == self.folder_path(self.filed[doc_id])

    @rule(data=st.data())
    @step
    def look_up_the_directory(self, data: st.DataObject) -> None:
        """The sharing dialog's lookup: every signed-in user sees the organisation's
        names and codes, and nothing else (no document word, role or state)."""
        user = self.world.users[data.draw(st.sampled_from(self.usernames), label="user")]
        query = data.draw(
            st.sampled_from(("", "M1", "D", "u", *VOCAB[:3])) | st.sampled_from(self.usernames),
            label="directory query",
        )
        r = self.stack.request("GET", "/directory", user.name, params={"q": query, "size": 50})
        if user.disabled:
            assert r.status_code == 401, r.text
            return
        assert r.status_code == 200, r.text
        everyone = (
            {("ministry", m, m, None) for m in self.ministries}
            | {("dept", d, d, None) for d in self.departments}
            | {("user", u.name, u.name, u.department) for u in self.world.users.values()}
        )
        everyone = {e for e in everyone if query.lower() in e[1].lower()}
        # The organisation's users are named after their user name in this machine,
        # except `admin` (its display name is set at first start).
        got = set()
        for item in r.json()["items"]:
            assert set(item) == {"kind", "code", "name", "principal", "department"}, item
            assert item["principal"] == f"{item['kind']}:{item['code']}", item
            got.add((item["kind"], item["code"], item["name"], item["department"]))
        want = {e for e in everyone if e[1] != "admin"}
        assert {g for g in got if g[1] != "admin"} == want, (query, got, want)
        assert r.json()["total"] == len(got) <= 50
        self.tally.directory_checks += 1

    @precondition(lambda self: bool(self.world.policies))
    @rule(data=st.data())
    @step
    def recreate_policy(self, data: st.DataObject) -> None:
        """Delete the newest policy, maybe once the index carries its tokens, and create
        another, maybe several: an engine that gives the deleted id out again (SQLite's
        `INTEGER PRIMARY KEY`), with generations starting at 1 again, makes the index's
        leftover tokens count for the new policy, which the searches after this step see."""
        indexed = data.draw(st.booleans(), label="index the newest policy first")
        if indexed:
            self.stack.drain(None)
            self.refresh_index_state()
        newest = max(range(len(self.world.policies)), key=lambda i: self.world.policies[i].id)
        self._delete_policy(newest)
        for _ in range(data.draw(st.integers(1, 2), label="policies created after")):
            self._create_policy(data)
            self.tally.policies_recreated += 1
            self.tally.policies_recreated_over_indexed_tokens += indexed


class ElasticsearchMachine(InProcessMachine):
    """The fast leg on Elasticsearch/OpenSearch (`CROSSDOC_TEST_ELASTICSEARCH_URL`)."""

    leg = "in-process-elasticsearch"
    search_url: ClassVar[str]

    def make_stack(self) -> Stack:
        return InProcessStack(self.extractor, search_url=self.search_url)


class ServerMachine(NoLeakMachine):
    leg = "http"

    def make_stack(self) -> Stack:
        return ServerStack()


class ElasticsearchServerMachine(ServerMachine):
    """The HTTP leg on Elasticsearch/OpenSearch: the server's worker races the searches."""

    leg = "http-elasticsearch"
    search_url: ClassVar[str]

    def make_stack(self) -> Stack:
        return ServerStack(search_url=self.search_url)


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def extractor() -> Iterator[TextExtractor]:
    shared = NativeTikaExtractor()
    yield shared
    shared.close()


def test_vocabulary_is_analysed_word_by_word() -> None:
    """The model's premise: each word is one term, alone and among the others."""
    analyzer = KoreanAnalyzer()
    for word in VOCAB:
        for mode in AnalysisMode:
            assert [t.text for t in analyzer.analyze(word, mode)] == [word], word
    for i in range(len(VOCAB)):
        run = [VOCAB[(i + k * 3) % len(VOCAB)] for k in range(5)]
        assert [t.text for t in analyzer.analyze(" ".join(run))] == run, run


@pytest.mark.slow
def test_no_leak_in_process(extractor: TextExtractor) -> None:
    tally = TALLIES["in-process"]
    tally.reset()
    InProcessMachine.extractor = extractor
    examples = int(os.environ.get("CROSSDOC_PROOF_EXAMPLES", "0"))
    chosen = _settings(16, 30)
    if examples:
        chosen = settings(chosen, max_examples=examples, derandomize=False)
    run_state_machine_as_test(InProcessMachine, settings=chosen)  # type: ignore[no-untyped-call]
    print(f"\nproof of no leak, in-process: {tally.line()}")
    assert tally.search_checks >= REQUIRED_SEARCH_CHECKS, tally.line()
    # Both paths of the search were exercised, and so were terms only others may read.
    assert tally.stale_search_checks >= REQUIRED_SEARCH_CHECKS // 10, tally.line()
    assert tally.search_checks - tally.stale_search_checks >= REQUIRED_SEARCH_CHECKS // 10
    assert tally.hidden_search_checks >= REQUIRED_SEARCH_CHECKS // 10, tally.line()
    assert tally.unreadable_document_checks >= 300, tally.line()
    # ACLs naming no one or ending in the past were refused; the directory was read.
    assert tally.refused_grants >= 2 and tally.directory_checks >= 10, tally.line()
    # Policies were in force for the searching user, and some decided what it found.
    assert tally.policy_search_checks >= REQUIRED_POLICY_SEARCH_CHECKS, tally.line()
    assert tally.policy_decided_search_checks >= REQUIRED_POLICY_SEARCH_CHECKS // 10
    # Suggestions were checked, also where others' documents held what was typed.
    assert tally.hidden_suggest_checks >= 100, tally.line()
    # Policies were deleted and created again over the index's leftover tokens.
    assert tally.policies_recreated_over_indexed_tokens >= 5, tally.line()
    # The personal views and the trash were checked, also where the model held documents
    # the user may not see; deleted documents were restored, and refused to others.
    assert tally.view_checks >= 300 and tally.hidden_view_checks >= 100, tally.line()
    assert tally.restores >= 3 and tally.refused_restores >= 3, tally.line()
    # Folders: each (user, folder) pair checked its metadata, listing and search filter.
    assert tally.folder_checks >= 30, tally.line()


#: Examples of the Elasticsearch/OpenSearch leg: each search is a request to the
#: node, so it runs fewer examples than the embedded leg (its counts are asserted).
ELASTICSEARCH_EXAMPLES = 4


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL"),
    reason="set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch",
)
def test_no_leak_in_process_on_elasticsearch(extractor: TextExtractor) -> None:
    tally = TALLIES["in-process-elasticsearch"]
    tally.reset()
    ElasticsearchMachine.extractor = extractor
    ElasticsearchMachine.search_url = os.environ["CROSSDOC_TEST_ELASTICSEARCH_URL"]
    chosen = _settings(ELASTICSEARCH_EXAMPLES, 30)
    run_state_machine_as_test(ElasticsearchMachine, settings=chosen)  # type: ignore[no-untyped-call]
    print(f"\nproof of no leak, in-process on Elasticsearch/OpenSearch: {tally.line()}")
    share = ELASTICSEARCH_EXAMPLES / 16  # of the embedded leg's examples and its floors
    assert tally.search_checks >= REQUIRED_SEARCH_CHECKS * share, tally.line()
    assert tally.stale_search_checks >= REQUIRED_SEARCH_CHECKS * share // 10, tally.line()
    assert tally.hidden_search_checks >= REQUIRED_SEARCH_CHECKS * share // 10, tally.line()
    assert tally.policy_search_checks >= REQUIRED_POLICY_SEARCH_CHECKS * share, tally.line()
    assert tally.hidden_suggest_checks >= 100 * share, tally.line()


@pytest.mark.slow
def test_no_leak_over_http() -> None:
    tally = TALLIES["http"]
    tally.reset()
    run_state_machine_as_test(ServerMachine, settings=_settings(2, 20))  # type: ignore[no-untyped-call]
    print(f"\nproof of no leak, over HTTP: {tally.line()}")
    assert tally.search_checks >= 500, tally.line()
    assert tally.unreadable_document_checks >= 30, tally.line()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL"),
    reason="set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch",
)
def test_no_leak_over_http_on_elasticsearch() -> None:
    tally = TALLIES["http-elasticsearch"]
    tally.reset()
    ElasticsearchServerMachine.search_url = os.environ["CROSSDOC_TEST_ELASTICSEARCH_URL"]
    run_state_machine_as_test(ElasticsearchServerMachine, settings=_settings(2, 20))  # type: ignore[no-untyped-call]
    print(f"\nproof of no leak, over HTTP on Elasticsearch/OpenSearch: {tally.line()}")
    assert tally.search_checks >= 500, tally.line()
    # How many searches race the worker while entries are stale depends on the machine's
    # speed (40 on a quiet CI machine, more under load; the embedded HTTP leg often 0):
    # no floor here. The in-process leg decides stale entries at every step, on both engines.
    assert tally.hidden_search_checks >= 100, tally.line()
    # The document endpoints never read the index: the embedded legs check them at length.
    assert tally.unreadable_document_checks >= 20, tally.line()
