"""The web UI's pages: thin handlers over the API's own dependencies and route functions.

Every page authenticates with the same dependency as the API (`PrincipalDep`, which
accepts the session cookie) and reads through the API's route functions, so what a
page shows is exactly what the API would answer to the same user. Pages that change
something post forms checked for CSRF here, or call the JSON API from our scripts
(with the CSRF header); either way the API's own functions do the work.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from auth.access import Permission, Principal, access_sources, can
from auth.errors import InvalidCredentialsError, InvalidTokenError
from auth.passwords import PasswordPolicyError
from indexer.access_facts import document_access, principal_of
from indexer.errors import InvalidQueryError
from indexer.query import MAX_QUERY_CHARS
from search_api.deps import (
    AddressDep,
    AdminDep,
    AuditorDep,
    AuditorRoleDep,
    AuditServiceDep,
    OrganisationServiceDep,
    PrincipalDep,
    ReadableDoc,
    SearchRateDep,
    ServicesDep,
    SignedInUserDep,
    access_claims,
    account_service,
    current_user_pending_change,
)
from search_api.errors import ApiError, error_body, forbidden
from search_api.routers import admin as admin_routes
from search_api.routers import audit as audit_routes
from search_api.routers import auth as auth_routes
from search_api.routers import documents as document_routes
from search_api.routers import explain as explain_routes
from search_api.routers import policies as policy_routes
from search_api.routers import search as search_routes
from search_api.schemas import PasswordChangeIn, RefreshRequest, SearchOut
from search_api.web.i18n import DEFAULT_LANGUAGE, LANG_COOKIE, LANGUAGES, Translator
from search_api.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    check_csrf_header,
    clear_session_cookies,
    csrf_failed,
    is_secure,
    new_csrf_token,
    set_csrf_cookie,
    set_session_cookies,
    tokens_match,
)
from services.errors import InvalidChangeError, WrongPasswordError
from services.explain import ExplainService
from services.sessions import SessionService
from storage.catalog.records import UserRecord
from storage.errors import NotFoundError

STATIC_DIR = Path(__file__).parent / "static"

#: No inline script or style, nothing from elsewhere; pages cannot be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=PackageLoader("search_api.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_MARK = re.compile(r"(<mark>.*?</mark>)", re.DOTALL)


def highlight_parts(fragment: str) -> list[tuple[str, bool]]:
    """A highlight fragment (escaped text with `<mark>`) as plain (text, marked) pieces.

    The template escapes each piece again and draws the marks itself, so nothing of
    the fragment is ever inserted as markup, whatever it contains.
    """
    parts = []
    for piece in _MARK.split(fragment):
        if not piece:
            continue
        marked = piece.startswith("<mark>") and piece.endswith("</mark>")
        text = piece[len("<mark>") : -len("</mark>")] if marked else piece
        parts.append((html.unescape(text), marked))
    return parts


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


_TYPE_LABELS = {
    "application/pdf": "PDF",
    "application/x-hwp": "HWP",
    "application/haansofthwp": "HWP",
    "application/vnd.hancom.hwp": "HWP",
    "application/hwp+zip": "HWPX",
    "application/vnd.hancom.hwpx": "HWPX",
    "application/msword": "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
    "application/vnd.ms-excel": "Excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
    "application/vnd.ms-powerpoint": "PowerPoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
    "text/plain": "TXT",
    "text/html": "HTML",
    "text/csv": "CSV",
    "message/rfc822": "E-mail",
    "application/zip": "ZIP",
}


def type_label(content_type: str) -> str:
    """A short name for a media type (PDF, HWP, Word…), or the type itself."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _TYPE_LABELS:
        return _TYPE_LABELS[base]
    if base.startswith("image/"):
        return base.removeprefix("image/").upper()
    return base or "?"


def day(when: datetime) -> str:
    """The day of `when` in Korea (where documents are dated)."""
    return when.astimezone(search_routes.KST).date().isoformat()


def moment(when: datetime) -> str:
    """`when` to the second, in Korean time."""
    return when.astimezone(search_routes.KST).strftime("%Y-%m-%d %H:%M:%S")


def json_text(value: object) -> str:
    """A value as readable JSON text (Hangul kept); the template escapes it like any text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


#: Characters of an audit detail value shown in the table (the whole value in its title).
DETAIL_CHARS = 60


def detail_items(detail: dict[str, Any]) -> list[tuple[str, str, str]]:
    """An audit event's detail as (key, shown value, full value), keys sorted.

    Text stays as it is, anything else is JSON; a long value is cut (the full one
    goes in the cell's title). The template escapes all three like any text.
    """
    items = []
    for key in sorted(detail):
        value = detail[key]
        full = value if isinstance(value, str) else json_text(value)
        shown = full if len(full) <= DETAIL_CHARS else full[: DETAIL_CHARS - 1] + "…"
        items.append((str(key), shown, full))
    return items


_templates.filters["size"] = human_size
_templates.filters["type_label"] = type_label
_templates.filters["day"] = day
_templates.filters["moment"] = moment
_templates.filters["json_text"] = json_text
_templates.filters["detail_items"] = detail_items
_templates.filters["highlight_parts"] = highlight_parts


def language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def _secure(request: Request) -> bool:
    return is_secure(request, request.app.state.services.settings.environment == "production")


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    principal: Principal | None = None,
    script: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the user's language, CSRF token and user."""
    t = Translator(language(request))
    csrf = request.cookies.get(CSRF_COOKIE)
    fresh_csrf = None
    if not csrf:
        csrf = fresh_csrf = new_csrf_token()
    display_name = ""
    if principal is not None:
        user = request.app.state.services.catalog.organisation.get_user(principal.username)
        display_name = user.display_name if user is not None else principal.username
    body = _templates.get_template(template).render(
        t=t,
        lang=t.lang,
        languages=LANGUAGES,
        csrf_token=csrf,
        csrf_field=CSRF_FIELD,
        principal=principal,
        display_name=display_name,
        is_admin=principal is not None and principal.has_role("admin"),
        is_auditor=principal is not None and principal.has_role("auditor", "admin"),
        path=request.url.path,
        here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        script=script,
        script_messages=t.subset("js."),
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    if fresh_csrf is not None:
        set_csrf_cookie(response, fresh_csrf, secure=_secure(request))
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    t = Translator(language(request))
    key = {400: "bad_request", 403: "forbidden", 404: "not_found", 429: "too_many"}.get(
        status, "generic"
    )
    # The plain-language explanation first; the API's own message under it, as detail.
    return render(
        request,
        "error.html",
        status=status,
        title=t(f"error.{key}"),
        explanation=t(f"error.{key}_text"),
        message=message,
    )


def _sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.cookies.get(SESSION_COOKIE):
        # A session whose access token expired: try its refresh token first.
        return RedirectResponse(f"/session/refresh?next={quote(here)}", status_code=303)
    return RedirectResponse(f"/signin?next={quote(here)}", status_code=303)


def _password_change_redirect(request: Request) -> Response:
    # The password was reset: the session serves only to choose a new one.
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/account/password?next={quote(here)}", status_code=303)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class PageRoute(APIRoute):
    """Answers in HTML: sign-in redirects and error pages instead of JSON, and the
    security headers (strict CSP) on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except InvalidTokenError:
                response = _sign_in_redirect(request)
            except ApiError as err:
                if err.code == "password_change_required":
                    return _password_change_redirect(request)
                response = error_page(request, err.status, err.message)
                for name, value in (err.headers or {}).items():
                    response.headers[name] = value
            except (NotFoundError, InvalidQueryError) as err:
                status = 404 if isinstance(err, NotFoundError) else 400
                response = error_page(request, status, str(err))
            except RequestValidationError:
                response = error_page(
                    request, 400, Translator(language(request))("error.bad_request")
                )
            except StarletteHTTPException as err:
                response = error_page(request, err.status_code, str(err.detail))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _check_form_csrf(request: Request, given: str) -> None:
    """A form's CSRF field must repeat the CSRF cookie (a cross-site form cannot read it)."""
    if not tokens_match(request.cookies.get(CSRF_COOKIE), given):
        raise csrf_failed()


# -- session ---------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "signin.html", next=safe_next(next), error=None, username="")


@router.post("/session/signin")
async def sign_in(
    request: Request,
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    # Signing in is CSRF-checked too, so no other site can sign a browser in as its own user.
    _check_form_csrf(request, csrf_token)
    t = Translator(language(request))
    try:
        tokens = await auth_routes.sign_in(
            OAuth2PasswordRequestForm(username=username, password=password),
            services,
            auditor,
            address,
        )
    except InvalidCredentialsError:
        return render(
            request,
            "signin.html",
            status=401,
            next=safe_next(next),
            error=t("signin.failed"),
            username=username,
        )
    except ApiError as err:
        if err.code == "account_disabled":
            return render(
                request,
                "signin.html",
                status=401,
                next=safe_next(next),
                error=t("signin.disabled"),
                username=username,
            )
        if err.status != 429:
            raise
        throttled = render(
            request,
            "signin.html",
            status=429,
            next=safe_next(next),
            error=t("signin.throttled"),
            username=username,
        )
        throttled.headers.update(err.headers or {})
        return throttled
    target = safe_next(next)
    if tokens.password_change_required:
        target = f"/account/password?next={quote(target)}"
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(
        response,
        access=tokens.access_token,
        refresh=tokens.refresh_token or "",
        lifetime=services.tokens.max_lifetime,
        secure=_secure(request),
    )
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, user: SignedInUserDep, next: str = "/") -> HTMLResponse:
    return _password_form(request, user, safe_next(next), None)


def _password_form(
    request: Request, user: UserRecord, next: str, error: str | None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "account_password.html",
        status=status,
        principal=principal_of(user),
        next=next,
        error=error,
        forced=user.must_change_password,
        username=user.username,
    )


@router.post("/session/password")
async def change_password(
    request: Request,
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    new_password_again: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """The API's own password change, for the web session (its cookies renewed)."""
    _check_form_csrf(request, csrf_token)
    user = await run_in_threadpool(
        current_user_pending_change, services, request.cookies.get(SESSION_COOKIE)
    )
    t = Translator(language(request))
    target = safe_next(next)
    if new_password != new_password_again:
        return _password_form(request, user, target, t("account.mismatch"), 422)
    body = PasswordChangeIn(current_password=current_password, new_password=new_password)
    accounts = await account_service(services)
    try:
        tokens = await run_in_threadpool(
            auth_routes.change_password, body, user, services, accounts, auditor, address
        )
    except WrongPasswordError:
        return _password_form(request, user, target, t("account.wrong_current"), 422)
    except PasswordPolicyError:
        return _password_form(request, user, target, t("account.weak"), 422)
    except InvalidChangeError:
        return _password_form(request, user, target, t("account.same"), 422)
    except ApiError as err:
        if err.status != 429:
            raise
        throttled = _password_form(request, user, target, t("signin.throttled"), 429)
        throttled.headers.update(err.headers or {})
        return throttled
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(
        response,
        access=tokens.access_token,
        refresh=tokens.refresh_token or "",
        lifetime=services.tokens.max_lifetime,
        secure=_secure(request),
    )
    return response


def _sessions(services: ServicesDep) -> SessionService:
    return SessionService(services.catalog, services.tokens.max_lifetime)


def _revoke_session(
    request: Request, services: ServicesDep, auditor: AuditorDep, address: str
) -> None:
    """Revoke the session's tokens with the API's own logout (or, with an expired access
    token, the refresh token's whole sign-in)."""
    access = request.cookies.get(SESSION_COOKIE)
    try:
        claims = access_claims(services, access)
    except InvalidTokenError:
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            return
        try:
            claims = services.tokens.verify(refresh, "refresh")
        except InvalidTokenError:
            return
    auth_routes.logout(claims, _sessions(services), address)


@router.post("/session/signout")
def sign_out(
    request: Request,
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    _check_form_csrf(request, csrf_token)
    _revoke_session(request, services, auditor, address)
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookies(response, secure=_secure(request))
    set_csrf_cookie(response, new_csrf_token(), secure=_secure(request))
    return response


def _refresh(
    request: Request, services: ServicesDep, auditor: AuditorDep, address: str, response: Response
) -> bool:
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return False
    try:
        tokens = auth_routes.refresh(
            RefreshRequest(refresh_token=refresh), services, _sessions(services), address
        )
    except (InvalidTokenError, InvalidCredentialsError):
        clear_session_cookies(response, secure=_secure(request))
        return False
    set_session_cookies(
        response,
        access=tokens.access_token,
        refresh=tokens.refresh_token or "",
        lifetime=services.tokens.max_lifetime,
        secure=_secure(request),
    )
    return True


@router.get("/session/refresh")
def refresh_and_return(
    request: Request,
    services: ServicesDep,
    auditor: AuditorDep,
    address: AddressDep,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> Response:
    """An expired access token, on a page: refresh the session and go back (or sign in)."""
    response: Response = RedirectResponse(safe_next(next), status_code=303)
    if not _refresh(request, services, auditor, address, response):
        signin = RedirectResponse(f"/signin?next={quote(safe_next(next))}", status_code=303)
        clear_session_cookies(signin, secure=_secure(request))
        return signin
    return response


@router.post("/session/refresh")
def refresh_for_script(
    request: Request, services: ServicesDep, auditor: AuditorDep, address: AddressDep
) -> Response:
    """An expired access token, in a script: refresh the session (204) or answer 401."""
    check_csrf_header(request)
    response: Response = Response(status_code=204)
    if not _refresh(request, services, auditor, address, response):
        response = JSONResponse(
            error_body("invalid_token", "다시 로그인하십시오 · sign in again"), status_code=401
        )
        clear_session_cookies(response, secure=_secure(request))
    return response


@router.post("/session/lang")
async def set_language(
    request: Request,
    lang: Annotated[str, Form(max_length=8)] = DEFAULT_LANGUAGE,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    _check_form_csrf(request, csrf_token)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        lang if lang in LANGUAGES else DEFAULT_LANGUAGE,
        max_age=365 * 24 * 3600,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


# -- search (the home page) ---------------------------------------------------------------

PAGE_SIZE = 20


def _org_names(services: ServicesDep) -> dict[str, str]:
    catalog = services.catalog
    names = {m.code: m.name for m in catalog.organisation.list_ministries()}
    names.update({d.code: d.name for d in catalog.organisation.list_departments()})
    return names


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request,
    _rate: SearchRateDep,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
    ministry: Annotated[str, Query(max_length=64)] = "",
    department: Annotated[str, Query(max_length=64)] = "",
    content_type: Annotated[str, Query(max_length=200)] = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    sort: Annotated[str, Query(pattern="^(relevance|newest|oldest)$")] = "relevance",
    page: Annotated[int, Query(ge=1, le=500)] = 1,
) -> HTMLResponse:
    if not q.strip() and sort == "relevance":
        # Without words there is nothing to rank by: the newest documents come first.
        sort = "newest"
    filters = {
        "q": q,
        "ministry": ministry,
        "department": department,
        "content_type": content_type,
        "from": from_,
        "to": to,
        "sort": sort,
    }
    error = None
    try:
        # The API's own search function: the same permission filter, audit and limits.
        results: SearchOut = search_routes.search(
            None,
            services,
            principal,
            auditor,
            address,
            q=q,
            department=department or None,
            ministry=ministry or None,
            content_type=content_type or None,
            tag=None,
            from_=from_ or None,
            to=to or None,
            sort=sort,  # type: ignore[arg-type]
            page=page,
            size=PAGE_SIZE,
        )
    except (ApiError, InvalidQueryError) as err:
        if isinstance(err, ApiError) and err.status not in (400, 422):
            raise
        error = Translator(language(request))("search.invalid", detail=str(err))
        results = SearchOut(total=0, page=page, size=PAGE_SIZE, hits=[], facets={})
    # Sizes of the hits on this page (the search already decided they are readable).
    sizes = {
        d.id: d.size for d in services.catalog.documents.get_many([h.id for h in results.hits])
    }

    def url(**changes: str | int | None) -> str:
        params = {**filters, "page": page, **changes}
        if "page" not in changes:
            params["page"] = 1
        kept = {k: v for k, v in params.items() if v not in ("", None, 1, "relevance")}
        return "/?" + urlencode(kept) if kept else "/"

    last_page = max(1, min(500, -(-results.total // PAGE_SIZE)))
    # Documents waiting for the indexer: results may be missing them for now.
    pending = services.catalog.outbox.backlog()
    return render(
        request,
        "search.html",
        status=400 if error else 200,
        principal=principal,
        script="search.js",
        results=results,
        filters=filters,
        url=url,
        last_page=last_page,
        names=_org_names(services),
        pending=pending,
        error=error,
        sizes=sizes,
        suggest_url=_suggest_url(request),
        today=datetime.now(UTC).date().isoformat(),
    )


# -- my department, upload, document ------------------------------------------------------


@router.get("/department")
def department_page(principal: PrincipalDep) -> Response:
    """My department: its documents are the search filtered to it, newest first."""
    if not principal.department:
        raise forbidden("you belong to no department")
    return RedirectResponse(
        "/?" + urlencode({"department": principal.department, "sort": "newest"}), status_code=303
    )


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    if not principal.department:
        raise forbidden(Translator(language(request))("upload.no_department"))
    return render(
        request,
        "upload.html",
        principal=principal,
        script="upload.js",
        max_bytes=request.app.state.services.settings.max_upload_bytes,
    )


#: Characters of extracted text shown on the document page.
PREVIEW_CHARS = 20_000


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(
    request: Request,
    doc: ReadableDoc,
    services: ServicesDep,
    principal: PrincipalDep,
    auditor: AuditorDep,
    address: AddressDep,
) -> HTMLResponse:
    # Readable is decided by the API's own dependency (404 otherwise, audited); the
    # metadata, and the access list for managers, come from the API's route functions.
    out = document_routes.get_document(doc, principal, auditor, address, services)
    access = document_access(doc, services.catalog.policies.list_all())
    now = datetime.now(UTC)
    can_write = can(principal, access, Permission.WRITE, now)
    can_manage = can(principal, access, Permission.MANAGE, now)
    acl = sources = None
    if can_manage:
        acl = document_routes.get_acl(doc, services, principal, auditor, address)
        # Who can read it and why: the sources the admin explanations expand.
        sources = [explain_routes.source_out(s) for s in access_sources(access, now)]
    cached = services.catalog.extractions.get(
        [doc.sha256], services.pipeline.extractor.version
    ).get(doc.sha256)
    preview = cached.text[:PREVIEW_CHARS] if cached is not None else None
    return render(
        request,
        "document.html",
        principal=principal,
        script="document.js",
        doc=out,
        versions=services.catalog.documents.list_versions(doc.id),
        can_write=can_write,
        can_manage=can_manage,
        acl=acl,
        sources=sources,
        preview=preview,
        preview_cut=cached is not None and len(cached.text) > PREVIEW_CHARS,
        names=_org_names(services),
        departments=services.catalog.organisation.list_departments(),
        ministries=services.catalog.organisation.list_ministries(),
        today=now.date().isoformat(),
    )


# -- administration -------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
def admin_org_page(request: Request, services: ServicesDep, admin: AdminDep) -> HTMLResponse:
    return render(
        request,
        "admin_org.html",
        principal=admin,
        script="admin.js",
        ministries=admin_routes.list_ministries(services, admin),
        departments=admin_routes.list_departments(services, admin),
    )


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users_page(
    request: Request,
    services: ServicesDep,
    organisation: OrganisationServiceDep,
    admin: AdminDep,
) -> HTMLResponse:
    return render(
        request,
        "admin_users.html",
        principal=admin,
        script="admin.js",
        users=admin_routes.list_users(organisation, admin, include_deleted=False),
        departments=admin_routes.list_departments(services, admin),
        names=_org_names(services),
    )


@router.get("/admin/policies", response_class=HTMLResponse)
def admin_policies_page(request: Request, services: ServicesDep, admin: AdminDep) -> HTMLResponse:
    return render(
        request,
        "admin_policies.html",
        principal=admin,
        script="admin.js",
        policies=policy_routes.list_policies(services, admin),
        ministries=admin_routes.list_ministries(services, admin),
        departments=admin_routes.list_departments(services, admin),
        names=_org_names(services),
        today=datetime.now(UTC).date().isoformat(),
    )


@router.get("/admin/explain", response_class=HTMLResponse)
def admin_explain_page(
    request: Request,
    services: ServicesDep,
    caller: AuditorRoleDep,
    address: AddressDep,
    user: Annotated[str, Query(max_length=64)] = "",
    document: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """Why can this user read this document (the API's own explanation)."""
    explanation = None
    if user and document:
        explanation = explain_routes.explain_access(
            ExplainService(services.catalog),
            caller,
            address,
            user=user.strip(),
            document=document.strip(),
        )
    return render(
        request,
        "admin_explain.html",
        principal=caller,
        user=user,
        document=document,
        explanation=explanation,
    )


AUDIT_PAGE = 50
#: The audit actions offered in the filter (any other can be typed in the URL).
AUDIT_ACTIONS = (
    "sign_in", "sign_out", "token_refresh", "token_reuse", "search", "suggest", "read", "download",
    "upload", "new_version", "update_metadata", "delete", "acl_change", "policy_create",
    "policy_update", "policy_delete", "org_change", "denied", "throttled",
    "explain_access", "explain_readers", "audit_export",
)  # fmt: skip
AUDIT_FILTERS = ("actor", "action", "document", "outcome", "since", "until")


def _audit_time(value: str, name: str, *, end_of_day: bool = False) -> datetime | None:
    """A day (KST; `until` counts the whole day) or an ISO 8601 time from the filter form."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name}: use YYYY-MM-DD") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=audit_routes.KST)
    if end_of_day and "T" not in value:
        moment += timedelta(days=1)
    return moment


@router.get("/admin/audit", response_class=HTMLResponse)
def admin_audit_page(
    request: Request,
    audit: AuditServiceDep,
    caller: AuditorRoleDep,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    document: Annotated[str, Query(max_length=200)] = "",
    outcome: Annotated[str, Query(max_length=32)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    # The API's own filters and listing, newest first (what an auditor looks for),
    # paged back in time with the cursor.
    filters = audit_routes.audit_filters(
        actor.strip() or None,
        action.strip() or None,
        document.strip() or None,
        outcome.strip() or None,
        _audit_time(since, "since"),
        _audit_time(until, "until", end_of_day=True),
    )
    headers = Response()
    events = audit_routes.list_audit(
        request,
        headers,
        audit,
        caller,
        filters,
        limit=AUDIT_PAGE,
        order="desc",
        before_id=before_id,
    )
    given = {
        "actor": actor,
        "action": action,
        "document": document,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    kept = {k: v for k, v in given.items() if v}
    cursor = headers.headers.get("X-Next-Cursor")
    export_query = urlencode(filters.as_detail())
    return render(
        request,
        "admin_audit.html",
        principal=caller,
        events=events,
        filters=given,
        next_url=("/admin/audit?" + urlencode({**kept, "before_id": cursor})) if cursor else None,
        first_url=("/admin/audit" + (f"?{urlencode(kept)}" if kept else "")) if before_id else None,
        audit_actions=AUDIT_ACTIONS,
        export_url="/api/v1/admin/audit/export" + (f"?{export_query}" if export_query else ""),
    )


SUGGEST_PATH = "/api/v1/suggest"


def _suggest_url(request: Request) -> str | None:
    """The query-suggestion endpoint, once the API has it (the search box then uses it)."""
    routes = request.app.routes
    return SUGGEST_PATH if any(getattr(r, "path", "") == SUGGEST_PATH for r in routes) else None


#: Static files are styles, scripts and an SVG icon: none may load or run anything of
#: its own if opened directly (an SVG is a document), and none may be framed.
STATIC_CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; frame-ancestors 'none'"
STATIC_HEADERS = {
    "Content-Security-Policy": STATIC_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SecureStaticFiles(StaticFiles):
    """Our static files with the security headers (nosniff: a script or style is only
    ever used as what its media type says), on every answer including 304 and 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except StarletteHTTPException as err:
            # Answered by the app's error handler (the JSON error shape), with our headers.
            headers = {**(err.headers or {}), **STATIC_HEADERS}
            raise StarletteHTTPException(err.status_code, err.detail, headers) from None
        for name, value in STATIC_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def install(app: FastAPI) -> None:
    """Add the pages and their static files to `app` (outside the OpenAPI schema)."""
    app.include_router(router)
    from search_api.web import views_pages  # imports this module: loaded after it

    app.include_router(views_pages.router)
    app.mount("/static", SecureStaticFiles(directory=STATIC_DIR), name="static")
