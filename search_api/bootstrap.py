"""First-start set-up: the `admin` user and, on request, a small demo organisation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from crossdoc.wiring.api import Services
from storage.errors import ConflictError

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


def bootstrap(services: Services, *, admin_password: str | None, demo: bool) -> BootstrapReport:
    """Create `admin` if missing, and the demo organisation on an empty catalog. Idempotent."""
    report = BootstrapReport()
    catalog = services.catalog
    if catalog.organisation.get_user("admin") is None:
        password = admin_password or secrets.token_urlsafe(12)
        try:
            catalog.organisation.create_user(
                "admin",
                services.passwords.hash(password),
                "관리자 (Administrator)",
                None,
                ["member", "admin"],
            )
            if admin_password is None:
                report.admin_password = password
        except ConflictError:
            pass  # another process created it first
    if demo and not catalog.organisation.list_ministries():
        demo_password = secrets.token_urlsafe(9)
        hashed = services.passwords.hash(demo_password)
        for code, name in DEMO_MINISTRIES:
            catalog.organisation.create_ministry(code, name)
        for code, name, ministry in DEMO_DEPARTMENTS:
            catalog.organisation.create_department(code, name, ministry)
        for username, display, department, roles in DEMO_USERS:
            catalog.organisation.create_user(username, hashed, display, department, roles)
            report.demo_users.append(username)
        report.demo_password = demo_password
    return report
