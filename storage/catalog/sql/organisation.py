"""Ministries, departments and users (SQL)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.catalog import models as m
from storage.catalog.records import DepartmentRecord, MinistryRecord, UserRecord
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
    )


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
    ) -> UserRecord:
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
            u.updated_at = _now()
            s.flush()
            return _user_record(s, u)
