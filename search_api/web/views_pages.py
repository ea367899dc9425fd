"""The personal pages: 내 문서, 공유받은 문서, 최근 문서, 휴지통 (my documents, shared
with me, recent, trash), over the API's own route functions (routers/me.py,
routers/trash.py): the same access checks, filters, paging and audit records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from search_api.deps import (
    AddressDep,
    AuditorDep,
    PrincipalDep,
    ServicesDep,
    client_address,
    current_principal,
)
from search_api.errors import ApiError
from search_api.routers import me as me_routes
from search_api.routers import trash as trash_routes
from search_api.web.pages import PageRoute, _check_form_csrf, _org_names, render
from search_api.web.session import SESSION_COOKIE
from services.documents import Caller
from services.personal import PersonalViews

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
#: The pages, in the order of their tabs: (path, message key).
TABS = (
    ("/me/documents", "views.mine"),
    ("/me/shared", "views.shared"),
    ("/me/recent", "views.recent"),
    ("/trash", "views.trash"),
)

FilterQuery = Annotated[str, Query(max_length=200)]


def _page(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    route: Callable[..., Any],
    filters: dict[str, str],
    page: int,
    **extra: Any,
) -> HTMLResponse:
    query = me_routes.view_query(
        services,
        content_type=filters["content_type"] or None,
        department=filters["department"] or None,
        from_=filters["from"] or None,
        to=filters["to"] or None,
        page=page,
        size=PAGE_SIZE,
    )
    if route is trash_routes.list_trash:
        out = route(principal, query, trash_routes.trash_for(services), services, auditor, address)
    else:
        out = route(principal, query, PersonalViews(services.catalog), auditor, address)
    path = request.url.path

    def url(**changes: str | int) -> str:
        params: dict[str, str | int] = {**filters, "page": page, **changes}
        if "page" not in changes:
            params["page"] = 1
        kept = {k: v for k, v in params.items() if v not in ("", 1)}
        return path + ("?" + urlencode(kept) if kept else "")

    return render(
        request,
        "views.html",
        principal=principal,
        tabs=TABS,
        view=path,
        out=out,
        filters=filters,
        url=url,
        last_page=max(1, -(-out.total // PAGE_SIZE)),
        names=_org_names(services),
        today=datetime.now(UTC).date().isoformat(),
        **extra,
    )


def _view(route: Callable[..., Any]) -> Callable[..., HTMLResponse]:
    def page(
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        auditor: AuditorDep,
        address: AddressDep,
        content_type: FilterQuery = "",
        department: FilterQuery = "",
        from_: Annotated[str, Query(alias="from", max_length=40)] = "",
        to: Annotated[str, Query(max_length=40)] = "",
        page: Annotated[int, Query(ge=1, le=500)] = 1,
        restored: Annotated[str, Query(max_length=64)] = "",
    ) -> HTMLResponse:
        filters = {"content_type": content_type, "department": department, "from": from_, "to": to}
        return _page(
            request,
            services,
            principal,
            auditor,
            address,
            route,
            filters,
            page,
            restored=restored,
        )

    return page


router.get("/me/documents", response_class=HTMLResponse)(_view(me_routes.my_documents))
router.get("/me/shared", response_class=HTMLResponse)(_view(me_routes.shared_with_me))
router.get("/me/recent", response_class=HTMLResponse)(_view(me_routes.recent))
router.get("/trash", response_class=HTMLResponse)(_view(trash_routes.list_trash))


@router.post("/trash/{document_id}/restore")
def restore(
    request: Request,
    document_id: str,
    services: ServicesDep,
    auditor: AuditorDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The trash page's restore button (a form: the CSRF field repeats the cookie)."""
    _check_form_csrf(request, csrf_token)
    principal = current_principal(services, request.cookies.get(SESSION_COOKIE))
    caller = Caller(principal.username, client_address(request))
    try:
        trash_routes.restore_document(
            document_id,
            principal,
            trash_routes.trash_for(services),
            services,
            caller,
            auditor,
            request,
        )
    except ApiError as err:
        if err.status != 409:  # 409: restored already (a second click)
            raise
    return RedirectResponse("/trash?" + urlencode({"restored": document_id}), status_code=303)
