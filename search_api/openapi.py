"""The OpenAPI schema documents every error an operation can answer, in the error shape.

FastAPI documents what a route declares and a 422 in its own validation shape. We answer
every error as `{"error": {"code", "message"}}` (errors.py), and many come from shared
dependencies (sign-in 401, role 403, document 404, throttling 429). So:

- a dependency says what it can answer with `@raises(status, ...)`;
- a route adds what its own body can answer with `responses=errors(status, ...)`;
- `install_openapi(app)` walks each route's dependencies and writes every such status
  (and the 422 of any operation with parameters or a body) into the schema, all with
  the `Error` schema, and the `Retry-After` header on 429 and 503.
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
    400: "bad request: malformed input, or a value out of range",
    401: "missing, invalid or expired token, or wrong credentials",
    403: "not allowed (role or permission)",
    404: "not found, or not readable by the caller (the same answer)",
    409: "conflict with the current state",
    413: "the upload is larger than the limit",
    415: "unsupported media type (send multipart/form-data)",
    422: "a parameter or field is invalid",
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
            document_errors(fastapi_openapi(), included)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
