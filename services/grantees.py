"""Whether a grantee (`user:NAME`, `dept:CODE`, `ministry:CODE`) exists.

A grant or policy naming someone who does not exist grants nothing today, and
everything to whoever later takes the name: both are refused when written.
"""

from __future__ import annotations

from storage.catalog.ports import Organisation

_KINDS = {
    "user": ("사용자", "user"),
    "dept": ("부서", "department"),
    "ministry": ("부처", "ministry"),
}


def principal_exists(org: Organisation, principal: str) -> bool:
    """Whether the principal names an existing user (deleted ones do not count),
    department or ministry. A malformed principal does not exist."""
    kind, _, name = principal.partition(":")
    if kind == "user":
        user = org.get_user(name)
        return user is not None and not user.deleted
    if kind == "dept":
        return org.get_department(name) is not None
    if kind == "ministry":
        return org.get_ministry(name) is not None
    return False


def no_such_principal(principal: str) -> str:
    """The Korean and English words for a grantee that does not exist."""
    kind, _, name = principal.partition(":")
    ko, en = _KINDS.get(kind, ("대상", "grantee"))
    return f"{ko} {name}이(가) 없습니다 · no such {en} {name}"
