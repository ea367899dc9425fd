"""/me/documents, /me/shared, /me/recent: the caller's personal views, each paged and
filtered as /search is (`page`, `size`, `content_type`, `department`, `from`, `to`),
each showing only what the caller may read now (services/personal.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from auth.access import Principal
from search_api.audit_writer import Auditor
from search_api.deps import AddressDep, AuditorDep, PrincipalDep, ServicesDep
from search_api.errors import ApiError
from search_api.routers.documents import document_out
from search_api.routers.search import _day_start, _out_of_range
from search_api.schemas import (
    FilterWarningOut,
    MyDocumentsOut,
    RecentItemOut,
    RecentOut,
    SharedItemOut,
    SharedOut,
)
from services.personal import PersonalViews
from services.search_filters import FilterWarning, resolve_filters
from storage.catalog.records import DocumentFilter

router = APIRouter(prefix="/me", tags=["me"])

#: Audit actions that open a document (the rest of `/me/recent`'s change it).
OPENED_ACTIONS = frozenset({"read", "download"})
#: Pages beyond this are refused (as /search's).
MAX_PAGE = 10_000


@dataclass(frozen=True)
class ViewQuery:
    """The filters and page of a list, as the caller wrote them and as resolved."""

    where: DocumentFilter
    warnings: tuple[FilterWarning, ...]
    page: int
    size: int
    #: What the caller asked for, for the audit record.
    asked: dict[str, str]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def warnings_out(self) -> list[FilterWarningOut]:
        return [FilterWarningOut(code=w.code, message=w.message) for w in self.warnings]


def view_query(
    services: ServicesDep,
    content_type: Annotated[
        str | None,
        Query(
            max_length=200,
            description=(
                "only this file type: a short name (`pdf`, `hwp`, `hwpx`, `docx`, `xlsx`, "
                "`txt`, …) or a media type; an unknown short name is reported in `warnings`"
            ),
            examples=["pdf"],
        ),
    ] = None,
    department: Annotated[
        str | None,
        Query(
            max_length=64,
            description=(
                "only documents of this department: its code (any case) or its exact "
                "name; an unknown one is reported in `warnings`"
            ),
            examples=["MOIS-DGOV"],
        ),
    ] = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description=(
                "created on or after: a day (YYYY-MM-DD, in Korea) or an ISO 8601 time "
                "(KST if no zone)"
            ),
            examples=["2026-01-01"],
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            max_length=40,
            description="created on or before this day (inclusive), or before this time",
            examples=["2026-12-31"],
        ),
    ] = None,
    page: Annotated[
        int,
        Query(
            json_schema_extra={"minimum": 1, "maximum": MAX_PAGE},
            description="the page, from 1",
            examples=[1],
        ),
    ] = 1,
    size: Annotated[
        int,
        Query(
            json_schema_extra={"minimum": 1, "maximum": 1000},
            description="entries per page, at most the server's limit (100 by default)",
            examples=[20],
        ),
    ] = 20,
) -> ViewQuery:
    """The filters and page every list takes, checked as /search checks them."""
    if not 1 <= page <= MAX_PAGE:
        raise _out_of_range("page", MAX_PAGE)
    if not 1 <= size <= services.settings.max_page_size:
        raise _out_of_range("size", services.settings.max_page_size)
    created_from = _day_start(from_, "from")
    created_to = _day_start(to, "to")
    if created_to is not None and to and "T" not in to:
        created_to += timedelta(days=1)  # `to` is an inclusive day
    filters = resolve_filters(
        services.catalog.organisation,
        department=department,
        ministry=None,
        content_type=content_type,
    )
    asked = {
        k: v
        for k, v in {
            "content_type": content_type,
            "department": department,
            "from": from_,
            "to": to,
        }.items()
        if v
    }
    return ViewQuery(
        DocumentFilter(
            content_type=filters.content_type,
            department=filters.department,
            created_from=created_from,
            created_to=created_to,
        ),
        filters.warnings,
        page,
        size,
        asked,
    )


ViewQueryDep = Annotated[ViewQuery, Depends(view_query)]


async def personal_views(services: ServicesDep) -> PersonalViews:
    return PersonalViews(services.catalog)


PersonalViewsDep = Annotated[PersonalViews, Depends(personal_views)]


def audit_list(
    auditor: Auditor,
    principal: Principal,
    address: str,
    view: str,
    query: ViewQuery,
    total: int,
    shown: int,
) -> None:
    """A list is audited as a search is (batched): which list, filters, counts."""
    auditor.record_later(
        Auditor.event(
            principal.username,
            "list",
            "",
            address,
            detail={
                "view": view,
                "filters": query.asked,
                "total": total,
                "shown": shown,
                "page": query.page,
            },
        )
    )


def _invalid_date_range(query: ViewQuery) -> None:
    where = query.where
    if (
        where.created_from is not None
        and where.created_to is not None
        and where.created_from >= where.created_to
    ):
        raise ApiError(
            422,
            "validation_error",
            "from: to보다 앞선 날짜여야 합니다 · from: must come before to",
        )


@router.get("/documents", response_model=MyDocumentsOut)
def my_documents(
    principal: PrincipalDep,
    query: ViewQueryDep,
    views: PersonalViewsDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> MyDocumentsOut:
    """내 문서 · the documents I uploaded (not deleted), newest first."""
    _invalid_date_range(query)
    found = views.my_documents(principal, query.where, query.offset, query.size)
    audit_list(auditor, principal, address, "me/documents", query, found.total, len(found.items))
    return MyDocumentsOut(
        total=found.total,
        page=query.page,
        size=query.size,
        items=[document_out(d) for d in found.items],
        warnings=query.warnings_out(),
    )


@router.get("/shared", response_model=SharedOut)
def shared_with_me(
    principal: PrincipalDep,
    query: ViewQueryDep,
    views: PersonalViewsDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> SharedOut:
    """공유받은 문서 · others' documents a grant in force gives me (by name, or my
    department or ministry), newest grant first, with who shared it and when."""
    _invalid_date_range(query)
    found = views.shared_with_me(principal, query.where, query.offset, query.size)
    audit_list(auditor, principal, address, "me/shared", query, found.total, len(found.items))
    return SharedOut(
        total=found.total,
        page=query.page,
        size=query.size,
        items=[
            SharedItemOut(
                document=document_out(s.document),
                shared_by=s.granted_by,
                shared_at=s.granted_at,
                principal=s.principal,
                permission=s.permission,  # type: ignore[arg-type]
                expires_at=s.expires_at,
            )
            for s in found.items
        ],
        warnings=query.warnings_out(),
    )


@router.get("/recent", response_model=RecentOut)
def recent(
    principal: PrincipalDep,
    query: ViewQueryDep,
    views: PersonalViewsDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> RecentOut:
    """최근 문서 · the documents I last opened or changed, newest first, each once,
    only those I may still read."""
    _invalid_date_range(query)
    # Opens recorded by the batched audit writer are written within a moment: flush
    # them, so a document opened just before shows at once.
    with contextlib.suppress(Exception):  # the writer keeps them and retries
        auditor.flush()
    found = views.recent(principal, query.where, query.offset, query.size)
    audit_list(auditor, principal, address, "me/recent", query, found.total, len(found.items))
    return RecentOut(
        total=found.total,
        page=query.page,
        size=query.size,
        items=[
            RecentItemOut(
                document=document_out(r.document),
                at=r.at,
                kind="opened" if r.action in OPENED_ACTIONS else "changed",
                action=r.action,
            )
            for r in found.items
        ],
        warnings=query.warnings_out(),
    )
