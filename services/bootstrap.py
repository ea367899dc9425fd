"""First-start set-up: the `admin` user and, on request, a small demo organisation.

Audited like any organisation change, by the actor `system` (an auditor asking who
created `admin`, and with which roles, finds the answer in the log), each step in
one unit of work with its audit records.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from services.organisation import HashPassword
from storage.catalog.ports import CatalogStore
from storage.catalog.records import NewAuditEvent, audit_event
from storage.errors import ConflictError

#: The actor of changes Crossdoc makes itself, not on anyone's request.
SYSTEM_ACTOR = "system"

DEMO_MINISTRIES = (
    ("MOIS", "행정안전부 (Ministry of the Interior and Safety)"),
    ("MOHW", "보건복지부 (Ministry of Health and Welfare)"),
    ("MOLIT", "국토교통부 (Ministry of Land, Infrastructure and Transport)"),
)
DEMO_DEPARTMENTS = (
    ("MOIS-DGOV", "디지털정부혁신실 (Digital Government)", "MOIS"),
    ("MOIS-REC", "기록관리과 (Records Management)", "MOIS"),
    ("MOHW-POP", "인구정책과 (Population Policy)", "MOHW"),
    ("MOLIT-HOUSE", "주택정책과 (Housing Policy)", "MOLIT"),
)
DEMO_USERS = (
    ("kim.minsu", "김민수", "MOIS-DGOV", ("member", "dept_admin")),
    ("lee.jiyoung", "이지영", "MOIS-REC", ("member",)),
    ("park.seojun", "박서준", "MOHW-POP", ("member",)),
    ("choi.yuna", "최유나", "MOLIT-HOUSE", ("member",)),
    ("auditor", "감사 담당 (Auditor)", None, ("member", "auditor")),
)


@dataclass
class BootstrapReport:
    admin_password: str | None = None  # set only when generated now (print it once)
    demo_password: str | None = None
    demo_users: list[str] = field(default_factory=list)


def _created(target: str, **detail: object) -> NewAuditEvent:
    return audit_event(SYSTEM_ACTOR, "org_change", target, detail={"op": "create", **detail})


def bootstrap(
    catalog: CatalogStore,
    hash_password: HashPassword,
    *,
    admin_password: str | None,
    demo: bool,
) -> BootstrapReport:
    """Create `admin` if missing, and the demo organisation on an empty catalog. Idempotent."""
    report = BootstrapReport()
    if catalog.organisation.get_user("admin") is None:
        password = admin_password or secrets.token_urlsafe(12)
        admin_roles = ["member", "admin"]
        hashed = hash_password(password)
        try:
            with catalog.unit_of_work() as uow:
                uow.organisation.create_user(
                    "admin", hashed, "관리자 (Administrator)", None, admin_roles
                )
                uow.audit.append([_created("user:admin", department=None, roles=admin_roles)])
                uow.commit()
            if admin_password is None:
                report.admin_password = password
        except ConflictError:
            pass  # another process created it first
    if demo and not catalog.organisation.list_ministries():
        demo_password = secrets.token_urlsafe(9)
        hashed = hash_password(demo_password)
        events: list[NewAuditEvent] = []
        try:
            with catalog.unit_of_work() as uow:
                for code, name in DEMO_MINISTRIES:
                    uow.organisation.create_ministry(code, name)
                    events.append(_created(f"ministry:{code}", code=code, name=name))
                for code, name, ministry in DEMO_DEPARTMENTS:
                    uow.organisation.create_department(code, name, ministry)
                    events.append(_created(f"dept:{code}", code=code, name=name, ministry=ministry))
                for username, display, department, roles in DEMO_USERS:
                    uow.organisation.create_user(username, hashed, display, department, roles)
                    events.append(
                        _created(f"user:{username}", department=department, roles=list(roles))
                    )
                uow.audit.append(events)
                uow.commit()
        except ConflictError:
            return report  # another process created the demo organisation first
        report.demo_users = [username for username, *_ in DEMO_USERS]
        report.demo_password = demo_password
    return report
