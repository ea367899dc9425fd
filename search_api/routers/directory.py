"""/directory: names and codes of users, departments and ministries, for any member.

What the sharing dialog needs to find a grantee (`kind:code`), and nothing more
than a directory shows (`services.directory`). Rate-limited like search; not
audited (see `services.directory` for why).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from search_api.deps import DirectoryServiceDep, PrincipalDep, SearchRateDep
from search_api.errors import ApiError
from search_api.schemas import DirectoryEntryOut, DirectoryOut
from services.directory import MAX_OFFSET, MAX_PAGE_SIZE

router = APIRouter(tags=["directory"])


@router.get("/directory", response_model=DirectoryOut, summary="Look up grantees by name or code")
def directory(
    _: PrincipalDep,
    __: SearchRateDep,
    directory: DirectoryServiceDep,
    q: Annotated[
        str,
        Query(max_length=100, description="part of a code or name (e.g. `기록` or `MOIS`)"),
    ] = "",
    kind: Annotated[
        list[Literal["user", "dept", "ministry"]] | None,
        Query(description="only these kinds (repeatable); all when absent"),
    ] = None,
    page: Annotated[int, Query(ge=1, description="page number, from 1")] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="entries per page")] = 20,
) -> DirectoryOut:
    if (page - 1) * size >= MAX_OFFSET:
        raise ApiError(
            422,
            "validation_error",
            f"page: 검색어를 더 좁히십시오 · narrow the query: at most {MAX_OFFSET} entries "
            "are paged through",
        )
    result = directory.lookup(q, kind or (), page, size)
    return DirectoryOut(
        total=result.total,
        page=result.page,
        size=result.size,
        items=[
            DirectoryEntryOut(
                kind=e.kind,  # type: ignore[arg-type]
                code=e.code,
                name=e.name,
                principal=f"{e.kind}:{e.code}",
                department=e.department,
            )
            for e in result.entries
        ],
    )
