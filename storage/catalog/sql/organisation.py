"""Ministries, departments and users (SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, null, or_, select
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import (
    DepartmentRecord,
    DirectoryEntry,
    MinistryRecord,
    OrgUsage,
    UserRecord,
)
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.tokens import USER_REVOCATION_KEPT
from storage.errors import ConflictError, NotFoundError


def _user_record(s: Session, u: m.User) -> UserRecord:
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
        must_change_password=u.must_change_password,
        password_changed_at=u.password_changed_at,
        deleted=u.deleted_at is not None,
    )


def _contains(query: str, *columns: Any) -> ColumnElement[bool]:
    # LIKE with the query's own % and _ escaped: the query is text, never a pattern.
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(c).like(pattern, escape="\\") for c in columns))


#: The directory's kinds in the order it lists them.
DIRECTORY_KINDS = ("ministry", "dept", "user")


class SqlOrganisation(SqlRepository):
    """`ports.Organisation` over SQL."""

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
            return _user_record(s, user)

    def get_user(self, username: str) -> UserRecord | None:
        with self._session() as s:
            u = s.get(m.User, username)
            return _user_record(s, u) if u else None

    def list_users(self) -> list[UserRecord]:
        with self._session() as s:
            users = list(s.scalars(select(m.User).order_by(m.User.username)))
            return [_user_record(s, u) for u in users]

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
        if deleted:
            disabled = True
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
                u.password_changed_at = _now()
            if display_name is not None:
                u.display_name = display_name
            if must_change_password is not None:
                u.must_change_password = must_change_password
            if deleted is not None:
                u.deleted_at = (u.deleted_at or _now()) if deleted else None
            u.updated_at = _now()
            s.flush()
            return _user_record(s, u)

    def rename_ministry(self, code: str, name: str) -> MinistryRecord:
        with self._session(write=True) as s:
            r = s.get(m.Ministry, code)
            if r is None:
                raise NotFoundError(f"no ministry {code}")
            r.name = name
            return MinistryRecord(r.code, r.name)

    def rename_department(self, code: str, name: str) -> DepartmentRecord:
        with self._session(write=True) as s:
            r = s.get(m.Department, code)
            if r is None:
                raise NotFoundError(f"no department {code}")
            r.name = name
            return DepartmentRecord(r.code, r.name, r.ministry_code)

    def usage(self, kind: str, code: str) -> OrgUsage:
        principal = f"{kind}:{code}"
        with self._session() as s:

            def count(statement: Any) -> int:
                return int(s.scalar(statement) or 0)

            # Policies are few: their JSON match is read and compared here, the same
            # on every engine. Expired ones count too (they can be extended).
            match_key = "ministry" if kind == "ministry" else "department"
            policies = sum(
                1
                for grantee, match in s.execute(select(m.Policy.principal, m.Policy.match))
                if grantee == principal or (match or {}).get(match_key) == code
            )
            grants = count(
                select(func.count())
                .select_from(m.DocumentGrant)
                .where(m.DocumentGrant.principal == principal)
            )
            if kind == "ministry":
                documents = count(
                    select(func.count()).select_from(m.Document).where(m.Document.ministry == code)
                )
                departments = count(
                    select(func.count())
                    .select_from(m.Department)
                    .where(m.Department.ministry_code == code)
                )
                users = count(
                    select(func.count())
                    .select_from(m.User)
                    .join(m.Department, m.Department.code == m.User.department_code)
                    .where(m.Department.ministry_code == code)
                )
                folders = count(
                    select(func.count())
                    .select_from(m.Folder)
                    .join(m.Department, m.Department.code == m.Folder.department)
                    .where(m.Department.ministry_code == code)
                )
            else:
                documents = count(
                    select(func.count())
                    .select_from(m.Document)
                    .where(m.Document.department == code)
                )
                departments = 0
                users = count(
                    select(func.count()).select_from(m.User).where(m.User.department_code == code)
                )
                # A folder refers to its department (a foreign key): it must go first.
                folders = count(
                    select(func.count()).select_from(m.Folder).where(m.Folder.department == code)
                )
            return OrgUsage(documents, users, departments, grants, policies, folders)

    def delete_ministry(self, code: str) -> None:
        with self._session(write=True) as s:
            r = s.get(m.Ministry, code)
            if r is None:
                raise NotFoundError(f"no ministry {code}")
            s.delete(r)

    def delete_department(self, code: str) -> None:
        with self._session(write=True) as s:
            r = s.get(m.Department, code)
            if r is None:
                raise NotFoundError(f"no department {code}")
            s.delete(r)

    def directory(
        self, query: str, kinds: Sequence[str], offset: int, limit: int
    ) -> tuple[int, list[DirectoryEntry]]:
        statements: dict[str, Any] = {
            "ministry": select(m.Ministry.code, m.Ministry.name, null())
            .where(_contains(query, m.Ministry.code, m.Ministry.name))
            .order_by(m.Ministry.code),
            "dept": select(m.Department.code, m.Department.name, null())
            .where(_contains(query, m.Department.code, m.Department.name))
            .order_by(m.Department.code),
            "user": select(m.User.username, m.User.display_name, m.User.department_code)
            .where(m.User.deleted_at.is_(None))
            .where(_contains(query, m.User.username, m.User.display_name))
            .order_by(m.User.username),
        }
        total = 0
        entries: list[DirectoryEntry] = []
        with self._session() as s:
            for kind in DIRECTORY_KINDS:
                if kind not in kinds:
                    continue
                statement = statements[kind]
                n = int(s.scalar(select(func.count()).select_from(statement.subquery())) or 0)
                # The part of this kind's rows that falls in the page [offset, offset+limit).
                start = max(0, offset - total)
                want = offset + limit - total - start
                if want > 0 and start < n:
                    rows = s.execute(statement.offset(start).limit(want)).all()
                    entries += [DirectoryEntry(kind, code, name, dept) for code, name, dept in rows]
                total += n
        return total, entries
