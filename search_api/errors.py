"""One mapping from our error types to HTTP answers of the shape
`{"error": {"code": "...", "message": "..."}}` (shared API.md)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from auth.errors import InvalidCredentialsError, InvalidTokenError
from auth.passwords import PasswordPolicyError
from indexer.errors import InvalidQueryError, SearchUnavailableError
from services.errors import InUseError, InvalidChangeError, NotAllowedError, WrongPasswordError
from storage.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.ingest import UploadTooLargeError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error raised by a route, with its status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(what: str = "document") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "you are not allowed to do this") -> ApiError:
    return ApiError(403, "forbidden", message)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}

STORAGE_FULL_MESSAGE = (
    "저장 공간이 부족합니다. 아무것도 저장되지 않았으니 나중에 다시 보내십시오 / "
    "Storage is full: nothing was stored; send it again later"
)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path.

    Starlette's 405 names the methods of the first route matching the path only, when
    several routes share it (GET and DELETE /documents/{id} are two routes).
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> JSONResponse:
        return _json(err.status, err.code, err.message, err.headers)

    @app.exception_handler(InvalidTokenError)
    async def _token(_: Request, err: InvalidTokenError) -> JSONResponse:
        return _json(
            401, "invalid_token", "missing, invalid or expired token", _UNAUTHORIZED_HEADERS
        )

    @app.exception_handler(InvalidCredentialsError)
    async def _credentials(_: Request, err: InvalidCredentialsError) -> JSONResponse:
        return _json(
            401, "invalid_credentials", "wrong username or password", _UNAUTHORIZED_HEADERS
        )

    @app.exception_handler(InvalidChangeError)
    async def _invalid_change(_: Request, err: InvalidChangeError) -> JSONResponse:
        return _json(422, err.code, str(err))

    @app.exception_handler(NotAllowedError)
    async def _not_allowed(_: Request, err: NotAllowedError) -> JSONResponse:
        return _json(403, "forbidden", str(err))

    @app.exception_handler(InUseError)
    async def _in_use(_: Request, err: InUseError) -> JSONResponse:
        return _json(409, "in_use", str(err))

    @app.exception_handler(WrongPasswordError)
    async def _wrong_password(_: Request, err: WrongPasswordError) -> JSONResponse:
        return _json(
            422,
            "wrong_current_password",
            "current_password: 지금 비밀번호가 맞지 않습니다 · the current password is wrong",
        )

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, err: NotFoundError) -> JSONResponse:
        return _json(404, "not_found", str(err))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, err: ConflictError) -> JSONResponse:
        return _json(409, "conflict", str(err))

    @app.exception_handler(IdempotencyKeyReusedError)
    async def _key_reused(_: Request, err: IdempotencyKeyReusedError) -> JSONResponse:
        return _json(409, "idempotency_key_reused", str(err))

    @app.exception_handler(UploadTooLargeError)
    async def _too_large(_: Request, err: UploadTooLargeError) -> JSONResponse:
        return _json(413, "payload_too_large", str(err))

    @app.exception_handler(InvalidQueryError)
    async def _query(_: Request, err: InvalidQueryError) -> JSONResponse:
        return _json(400, "invalid_query", str(err))

    @app.exception_handler(PasswordPolicyError)
    async def _password(_: Request, err: PasswordPolicyError) -> JSONResponse:
        return _json(422, "weak_password", str(err))

    @app.exception_handler(StorageUnavailableError)
    async def _storage_down(_: Request, err: StorageUnavailableError) -> JSONResponse:
        log.error("storage unavailable: %s", err)
        return _json(
            503,
            "storage_unavailable",
            "storage is unavailable; try again shortly",
            {"Retry-After": "5"},
        )

    @app.exception_handler(StorageFullError)
    async def _storage_full(_: Request, err: StorageFullError) -> JSONResponse:
        # Nothing was kept (the spool, a temporary blob or the transaction was
        # undone); the same request succeeds once an operator frees space.
        log.error("storage full: %s", err)
        return _json(
            507,
            "insufficient_storage",
            STORAGE_FULL_MESSAGE,
            {"Retry-After": "60"},
        )

    @app.exception_handler(SearchUnavailableError)
    async def _search_down(_: Request, err: SearchUnavailableError) -> JSONResponse:
        log.error("search unavailable: %s", err)
        return _json(
            503,
            "search_unavailable",
            "search is unavailable; try again shortly",
            {"Retry-After": "5"},
        )

    @app.exception_handler(StorageError)
    async def _storage(_: Request, err: StorageError) -> JSONResponse:
        log.error("storage error: %s", err)
        return _json(500, "storage_error", "the document could not be stored")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return _json(422, "validation_error", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(err.status_code, "error")
        headers = getattr(err, "headers", None)
        if err.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return _json(err.status_code, code, str(err.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=err)
        return _json(500, "internal_error", "internal error")
