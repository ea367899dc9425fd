"""/search: permission-aware full-text search with facets, highlights and "did you
mean"; /suggest: completions as you type. Both through the same access filter."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from indexer.index.base import SearchRequest, SortOrder
from indexer.query import MAX_QUERY_CHARS, parse_user_query
from search_api.audit_writer import Auditor
from search_api.deps import (
    AddressDep,
    AuditorDep,
    PrincipalDep,
    SearchRateDep,
    ServicesDep,
    TokenDep,
    current_principal,
    enforce_rate,
)
from search_api.errors import ApiError
from search_api.openapi import errors
from search_api.schemas import (
    FacetOut,
    FilterWarningOut,
    FolderRef,
    HitOut,
    SearchOut,
    SuggestionOut,
    SuggestOut,
)
from services.folders import FolderService
from services.search import corrections_for, search_documents, suggest_for
from services.search_filters import FilterWarning, resolve_filters

router = APIRouter(tags=["search"])

MAX_PAGE = 10_000
#: At most this many hits make a search worth a "did you mean".
FEW_HITS = 2
#: Longest text /suggest completes.
MAX_SUGGEST_CHARS = 100

# Dates without a time are days in Korea.
KST = ZoneInfo("Asia/Seoul")


def _day_start(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        if "T" in value:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=KST)
        return datetime.combine(date.fromisoformat(value), time(), KST)
    except ValueError:
        raise ApiError(
            422,
            "validation_error",
            f"{name}: YYYY-MM-DD 날짜나 ISO 8601 시각이어야 합니다 · "
            f"{name}: use YYYY-MM-DD or an ISO 8601 time",
        ) from None


def _out_of_range(name: str, highest: int) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"{name}: 1부터 {highest}까지입니다 · {name}: from 1 to {highest}",
    )


def search(
    _rate: SearchRateDep,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_CHARS,
            description=(
                '검색어 · the words to find: words, `"exact phrases"`, `-excluded` '
                "words; Korean with or without particles and spacing. Empty: every "
                "readable document (with the filters)."
            ),
            examples=["출생신고 -사망", '"주민등록 등본"'],
        ),
    ] = "",
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
    ministry: Annotated[
        str | None,
        Query(
            max_length=64,
            description=(
                "only documents of this ministry: its code (any case) or its exact name; "
                "an unknown one is reported in `warnings`"
            ),
            examples=["MOIS"],
        ),
    ] = None,
    content_type: Annotated[
        str | None,
        Query(
            max_length=200,
            description=(
                "only this file type: a short name (`pdf`, `hwp`, `hwpx`, `doc`, `docx`, "
                "`xls`, `xlsx`, `ppt`, `pptx`, `txt`, `csv`, `html`, `eml`, `zip`, `jpg`, "
                "`png`, …) or a media type as in the `content_type` facet; an unknown "
                "short name is reported in `warnings`"
            ),
            examples=["pdf", "application/x-hwp"],
        ),
    ] = None,
    tag: Annotated[
        str | None,
        Query(max_length=64, description="only documents with this tag", examples=["예산"]),
    ] = None,
    folder: Annotated[
        str | None,
        Query(
            max_length=64,
            description=(
                "only documents filed in this folder or a folder under it (its id); an "
                "unknown one is reported in `warnings`"
            ),
            examples=["4f0c2d8e9a7b4c1d8e2f3a4b5c6d7e8f"],
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
    sort: Annotated[
        Literal["relevance", "newest", "oldest"],
        Query(
            description="relevance (the default), or by creation time",
            examples=["newest"],
        ),
    ] = "relevance",
    # Bounds are documented in the schema and checked here, so that every out-of-range
    # page or size answers the same 422 with the bound in its message.
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
            description="hits per page, at most the server's limit (100 by default)",
            examples=[20],
        ),
    ] = 20,
) -> SearchOut:
    settings = services.settings
    if not 1 <= page <= MAX_PAGE:
        raise _out_of_range("page", MAX_PAGE)
    if not 1 <= size <= settings.max_page_size:
        raise _out_of_range("size", settings.max_page_size)
    if page * size > settings.max_result_window:
        # The service refuses it too (a bound of the index); here it is one more
        # parameter out of range, answered as the others are.
        window = settings.max_result_window
        raise ApiError(
            422,
            "validation_error",
            f"page: 처음 {window}건 안에서만 볼 수 있습니다 (page × size ≤ {window}) · "
            f"page: results beyond the first {window} are not available",
        )
    created_from = _day_start(from_, "from")
    created_to = _day_start(to, "to")
    if created_to is not None and to and "T" not in to:
        created_to += timedelta(days=1)  # `to` is an inclusive day
    filters = resolve_filters(
        services.catalog.organisation,
        department=department,
        ministry=ministry,
        content_type=content_type,
    )
    folder_service = FolderService(services.catalog)
    folder_ids = folder_service.search_subtree(folder) if folder else None
    warnings = list(filters.warnings)
    if folder_ids == ():
        warnings.append(
            FilterWarning(
                "unknown_folder",
                f"folder '{folder}': 그런 폴더가 없습니다 · no folder has this id",
            )
        )
    request = SearchRequest(
        query=parse_user_query(q),
        department=filters.department,
        ministry=filters.ministry,
        content_type=filters.content_type,
        tag=tag or None,
        folders=folder_ids,
        created_from=created_from,
        created_to=created_to,
        sort=SortOrder(sort),
        offset=(page - 1) * size,
        limit=size,
    )
    results = search_documents(
        services.catalog.documents,
        services.index,
        principal,
        request,
        max_window=settings.max_result_window,
    )
    did_you_mean = None
    if results.total <= FEW_HITS and request.query.words and page == 1:
        corrected = corrections_for(
            services.catalog.documents, services.index, principal, request.query
        )
        if corrected is not None:
            # Proposed only if it finds more, with the same filters and access.
            better = search_documents(
                services.catalog.documents,
                services.index,
                principal,
                replace(
                    request,
                    query=parse_user_query(corrected),
                    offset=0,
                    limit=1,
                    with_facets=False,
                    with_highlights=False,
                ),
                max_window=settings.max_result_window,
            )
            if better.total > results.total:
                did_you_mean = corrected
    auditor.record_later(
        Auditor.event(
            principal.username,
            "search",
            "",
            address,
            detail={
                "q": q,
                "filters": {
                    k: v
                    for k, v in {
                        "department": department,
                        "ministry": ministry,
                        "content_type": content_type,
                        "tag": tag,
                        "folder": folder,
                        "from": from_,
                        "to": to,
                    }.items()
                    if v
                },
                "total": results.total,
                "hits": len(results.hits),
                "page": page,
            },
        )
    )
    # Paths of the page's hits only (the caller may read them: see services.folders).
    paths = folder_service.paths_of([h.id for h in results.hits])
    # Built without validation: every value is typed already (the index's
    # `SearchResults`); validating ~20 hits and ~130 facet values again is a
    # tenth of a search's CPU.
    return SearchOut.model_construct(
        total=results.total,
        page=page,
        size=size,
        hits=[
            HitOut.model_construct(
                id=h.id,
                title=h.title,
                filename=h.filename,
                department=h.department,
                ministry=h.ministry,
                content_type=h.content_type,
                created_at=h.created_at,
                score=h.score,
                highlights=list(h.highlights),
                folder=(
                    FolderRef(id=paths[h.id].id, path=paths[h.id].text) if h.id in paths else None
                ),
            )
            for h in results.hits
        ],
        facets={
            name: [FacetOut.model_construct(value=f.value, count=f.count) for f in buckets]
            for name, buckets in results.facets.items()
        },
        did_you_mean=did_you_mean,
        warnings=[FilterWarningOut(code=w.code, message=w.message) for w in warnings],
    )


@router.get(
    "/search",
    response_model=SearchOut,
    responses={
        **errors(400, 503),
        429: {"description": "too many searches (see Retry-After)"},
    },
)
@functools.wraps(search)
def search_endpoint(*args: Any, **kwargs: Any) -> Response:
    """`search` over HTTP (its parameters, dependencies and name; the web page calls
    `search` itself): the answer serialised once, straight from the model.

    FastAPI would dump the returned model, validate the dump against
    `response_model` and serialise it again: about a quarter of a search's CPU
    with a full page and the facets. The JSON is the same (`response_model`
    still documents it, and the schema conformance test checks it).
    """
    out: SearchOut = search(*args, **kwargs)
    return Response(out.model_dump_json(), media_type="application/json")


def suggest(
    _rate: SearchRateDep,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    q: Annotated[str, Query(max_length=MAX_SUGGEST_CHARS)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
) -> SuggestOut:
    """Titles and terms beginning with `q`, only from documents the caller may read.

    Korean is completed letter by letter (`행정아` → 행정안전부) and by initial
    consonants (`ㅎㅈㅇㅈㅂ` → 행정안전부).
    """
    found = suggest_for(services.catalog.documents, services.index, principal, q, limit)
    auditor.record_later(
        Auditor.event(
            principal.username, "suggest", "", address, detail={"q": q, "count": len(found)}
        )
    )
    # Built without validation: every value is typed already (the index's `Suggestion`).
    return SuggestOut.model_construct(
        q=q,
        suggestions=[
            SuggestionOut.model_construct(text=s.text, kind=s.kind.value, count=s.count)
            for s in found
        ],
    )


@router.get(
    "/suggest",
    response_model=SuggestOut,
    responses={
        401: {"description": "not signed in"},
        **errors(403),  # a password change first (`current_principal`)
        422: {"description": "invalid parameters"},
        429: {"description": "too many searches (see Retry-After); shares the search limit"},
    },
    name="suggest",  # the operation's id and summary, as when `suggest` was the endpoint
)
async def suggest_endpoint(
    services: ServicesDep,
    token: TokenDep,
    auditor: AuditorDep,
    address: AddressDep,
    request: Request,
    q: Annotated[str, Query(max_length=MAX_SUGGEST_CHARS)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
) -> Response:
    """Titles and terms beginning with `q`, only from documents the caller may read.

    Korean is completed letter by letter (`행정아` → 행정안전부) and by initial
    consonants (`ㅎㅈㅇㅈㅂ` → 행정안전부).
    """

    # `suggest` over HTTP, on every keystroke of everyone typing, in ONE worker
    # thread hop: the caller from the live catalog (`current_principal`, as
    # `PrincipalDep` does), the search rate limits (as `SearchRateDep` does), the
    # suggestions, and the JSON, serialised once straight from the model (FastAPI
    # would validate the returned model against `response_model` on a hop of its
    # own, then serialise it). As dependencies, these were three hops.
    def answer() -> str:
        principal = current_principal(services, token)
        rules = services.rate_rules
        enforce_rate(
            services,
            auditor,
            [
                (rules.search_per_user, f"user:{principal.username}"),
                (rules.search_per_address, f"address:{address}"),
            ],
            actor=principal.username,
            address=address,
            detail={"path": request.url.path},
        )
        out = suggest(None, services, principal, auditor, address, q, limit)
        return out.model_dump_json()

    return Response(await run_in_threadpool(answer), media_type="application/json")
