"""/admin/audit: the audit log (roles `auditor`, `admin`), listed with filters or exported."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from search_api.deps import AddressDep, AuditorRoleDep, AuditServiceDep
from search_api.errors import ApiError
from search_api.openapi import errors
from search_api.schemas import AuditOut
from services.documents import Caller
from storage.catalog.records import AuditFilter

router = APIRouter(prefix="/admin", tags=["audit"])

# Times without a zone are Korean times, as everywhere in the API.
KST = ZoneInfo("Asia/Seoul")
MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None
    action: str | None
    document: str | None
    outcome: str | None
    since: datetime | None
    until: datetime | None

    def as_filter(self) -> AuditFilter:
        """The catalog's filter (the API calls the target `document`)."""
        return AuditFilter(
            self.actor, self.action, self.document, self.outcome, self.since, self.until
        )

    def as_detail(self) -> dict[str, object]:
        return {
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in self.__dict__.items()
            if v is not None
        }


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_8601(value: object) -> object:
    # pydantic also reads numbers ("0.5", "1700000000") as Unix times; the API and its
    # schema (format: date-time) speak ISO 8601 only.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("use an ISO 8601 time, e.g. 2026-11-01T09:00:00+09:00")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=KST)


def audit_filters(
    actor: Annotated[str | None, Query(max_length=64, description="who acted")] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="e.g. sign_in, search, read, download, upload, denied"),
    ] = None,
    document: Annotated[str | None, Query(max_length=200, description="document id")] = None,
    outcome: Annotated[
        str | None, Query(max_length=32, description="ok, denied or not_found")
    ] = None,
    since: Annotated[
        IsoTime | None, Query(description="from this time (inclusive; ISO 8601, KST if no zone)")
    ] = None,
    until: Annotated[IsoTime | None, Query(description="before this time (exclusive)")] = None,
) -> AuditFilters:
    filters = AuditFilters(actor, action, document, outcome, _aware(since), _aware(until))
    if filters.since and filters.until and filters.until <= filters.since:
        raise ApiError(
            422,
            "validation_error",
            "until: since보다 뒤여야 합니다 · until: must be after since",
        )
    return filters


FiltersDep = Annotated[AuditFilters, Depends(audit_filters)]


@router.get(
    "/audit",
    response_model=list[AuditOut],
    responses=errors(400),
    summary="Audit events, oldest first (or newest first with order=desc); page on with the "
    "X-Next-Cursor header as after_id (asc) or before_id (desc)",
)
def list_audit(
    request: Request,
    response: Response,
    audit: AuditServiceDep,
    _: AuditorRoleDep,
    filters: FiltersDep,
    after_id: Annotated[int, Query(ge=0, description="cursor: only events after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")] = 100,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="asc: oldest first (the default); desc: newest first"),
    ] = "asc",
    before_id: Annotated[
        int | None,
        Query(ge=1, description="cursor for order=desc: only events before this id"),
    ] = None,
) -> list[AuditOut]:
    newest_first = order == "desc"
    page = audit.page(
        filters.as_filter(),
        after_id=after_id,
        before_id=before_id,
        limit=limit,
        newest_first=newest_first,
    )
    if page.next_cursor is not None:
        cursor = page.next_cursor
        response.headers["X-Next-Cursor"] = str(cursor)
        # Newest first pages down the ids (before_id), oldest first up (after_id).
        cursor_param = "before_id" if newest_first else "after_id"
        next_url = request.url.include_query_params(**{cursor_param: cursor})
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [
        AuditOut(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            address=r.address,
            outcome=r.outcome,
            detail=r.detail,
        )
        for r in page.records
    ]


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}, **errors(400)},
    summary="The audit log as JSON Lines (one event a line, with its chain hashes)",
)
def export_audit(
    audit: AuditServiceDep,
    auditor: AuditorRoleDep,
    address: AddressDep,
    filters: FiltersDep,
) -> StreamingResponse:
    # Audited before the first line is read: the export is in the log it exports.
    lines = audit.export(
        filters.as_filter(), Caller(auditor.username, address), filters.as_detail()
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        (line.encode("utf-8") for line in lines),
        media_type="application/jsonl",
        headers={
            "Content-Disposition": f'attachment; filename="crossdoc-audit-{stamp}.jsonl"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
