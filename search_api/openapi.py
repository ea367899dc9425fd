"""The OpenAPI schema documents every error an operation can answer, in the error shape.

FastAPI documents what a route declares and a 422 in its own validation shape. We answer
every error as `{"error": {"code", "message"}}` (errors.py), and many come from shared
dependencies (sign-in 401, role 403, document 404, throttling 429). So:

- a dependency says what it can answer with `@raises(status, ...)`;
- a route adds what its own body can answer with `responses=errors(status, ...)`;
- `install_openapi(app)` walks each route's dependencies and writes every such status
  (and the 422 of any operation with parameters or a body) into the schema, all with
  the `Error` schema, and the `Retry-After` header on 429 and 503;
- and gives every parameter a description and an example (`PARAMETER_DOCS` for those
  a route leaves without).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])

_RAISES: dict[Callable[..., Any], frozenset[int]] = {}

#: What each error status means in this API (the description in the schema).
DESCRIPTIONS = {
    400: "bad request: a malformed request or body",
    401: "missing, invalid or expired token, or wrong credentials",
    403: "not allowed (role or permission)",
    404: "not found, or not readable by the caller (the same answer)",
    409: "conflict with the current state",
    413: "the upload is larger than the limit",
    415: "unsupported media type (send multipart/form-data)",
    422: "a parameter or field is invalid or out of range (its name in the message)",
    429: "too many requests (see Retry-After)",
    503: "a dependency is unavailable; try again shortly",
    507: "not enough storage to keep the upload",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "string"},
    }
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer: `{"error": {"code": "snake_case_code", "message": "..."}}`."""

    error: ErrorDetail


def raises(*statuses: int) -> Callable[[F], F]:
    """Record that the dependency `fn` can answer these error statuses."""

    def mark(fn: F) -> F:
        _RAISES[fn] = _RAISES.get(fn, frozenset()) | frozenset(statuses)
        return fn

    return mark


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose own body can answer these error statuses."""
    return {status: {"description": DESCRIPTIONS.get(status, "error")} for status in statuses}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _error_response(status: int, description: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


def _document(operation: dict[str, Any], statuses: set[int]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        statuses.add(400)  # a body that cannot be parsed at all
    statuses.update(int(key) for key in responses if key.isdigit() and int(key) >= 400)
    for status in statuses:
        description = responses.get(str(status), {}).get("description")
        if status == 422:
            description = None  # FastAPI's "Validation Error", in a shape we never send
        responses[str(status)] = _error_response(status, description)
    operation["responses"] = dict(sorted(responses.items()))


_DOCUMENT_ID_EXAMPLE = "3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7"

#: A description and an example for each parameter a route leaves without one (a
#: route's own description or example wins). Shared names (`document_id`, `username`,
#: `limit`) are described once here instead of in every route that has them.
PARAMETER_DOCS: dict[str, tuple[str, Any]] = {
    "document_id": ("문서 ID · the document's id (32 hexadecimal digits)", _DOCUMENT_ID_EXAMPLE),
    "version": ("판 번호 · the version number, from 1", 1),
    "username": ("사용자 이름 · a username", "kim.minsu"),
    "user": ("사용자 이름 · a username", "kim.minsu"),
    "policy_id": ("접근 정책 ID · the access policy's id", 1),
    "permission": ("권한 · the permission asked about: read, write or manage", "read"),
    "document": ("문서 ID · a document id", _DOCUMENT_ID_EXAMPLE),
    "idempotency-key": (
        "재시도 키 · any unique string per upload: the same upload sent again with it "
        "answers the first document (kept 24 hours)",
        "0b9c6f3e-5d1a-4c2b-9e8f-7a6b5c4d3e2f",
    ),
    "q": ("검색어 · the text to find or complete", "행정안"),
    "limit": ("최대 개수 · at most this many items", 10),
    "after_id": ("커서 · only events after this id (the last id of the previous page)", 0),
    "before_id": ("커서 · for order=desc: only events before this id", 1000),
    "order": ("순서 · asc: oldest first; desc: newest first", "desc"),
    "actor": ("행위자 · who acted (a username)", "kim.minsu"),
    "action": ("동작 · what was done", "download"),
    "outcome": ("결과 · ok, denied or not_found", "denied"),
    "since": ("시작 · from this time (inclusive; ISO 8601, KST if no zone)", "2026-11-01"),
    "until": ("끝 · before this time (exclusive; ISO 8601, KST if no zone)", "2026-12-01"),
    "code": ("코드 · a ministry or department code", "MOIS"),
    "include_deleted": ("삭제 포함 · list deleted users too", False),
    "kind": (
        "종류 · only entries of this kind (repeatable): user, dept, ministry",
        "dept",
    ),
    "page": ("쪽 · the page number, from 1", 1),
    "size": ("쪽 크기 · entries per page", 20),
}


def _has_example(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return any("example" in d or "examples" in d for d in (parameter, schema))


def document_parameters(schema: dict[str, Any]) -> None:
    """Give every parameter of every operation a description and an example."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                known = PARAMETER_DOCS.get(parameter["name"].lower())
                if known is None:
                    continue
                description, example = known
                parameter.setdefault("description", description)
                if not _has_example(parameter):
                    parameter["example"] = example


def document_errors(schema: dict[str, Any], routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Write every error of every operation of `routers` (prefix, router) into `schema`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorDetail"] = ErrorDetail.model_json_schema()
    error_out = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    error_out.pop("$defs", None)
    components["ErrorOut"] = error_out
    paths: dict[str, Any] = schema.get("paths", {})
    documented: set[tuple[str, str]] = set()
    for prefix, router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            statuses = {s for call in _calls(route.dependant) for s in _RAISES.get(call, ())}
            path = prefix + route.path_format
            for method in route.methods or ():
                if (operation := paths.get(path, {}).get(method.lower())) is not None:
                    _document(operation, set(statuses))
                    documented.add((path, method.lower()))
    # Operations of routes not listed (the app's own) still get their declared errors.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if (path, method) not in documented:
                _document(operation, set())
    # FastAPI's own validation shapes are never sent (errors.py answers 422 as ErrorOut).
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def install_openapi(app: FastAPI, routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Make the app's schema (built once, on first use) document every error.

    `routers` are the (prefix, router) pairs included in `app`: their routes carry the
    dependencies whose errors are documented.
    """
    fastapi_openapi = app.openapi
    included = list(routers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # FastAPI's schema, cached in app.openapi_schema, completed in place.
            schema = fastapi_openapi()
            document_errors(schema, included)
            document_parameters(schema)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
