"""One mapping from our error types to HTTP answers of the shape
`{"error": {"code": "...", "message": "..."}}` (shared API.md).

Every message is Korean first, then English (`한국어 · English`): a message written
in English only gets the Korean sentence of its code in front (`error_body`), so no
error, whoever raises it, reaches a user in English alone.
"""

from __future__ import annotations

import logging
import re
from typing import Any

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
    NoIntactCopyError,
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


#: The Korean sentence for each error code, put before a message in English only.
KOREAN_MESSAGES = {
    "bad_request": "요청 형식이 올바르지 않습니다",
    "unauthorized": "로그인이 필요합니다",
    "invalid_token": "로그인이 필요하거나 인증 토큰이 만료되었습니다",
    "invalid_credentials": "사용자 이름 또는 비밀번호가 틀렸습니다",
    "forbidden": "권한이 없습니다",
    "not_found": "찾을 수 없습니다",
    "method_not_allowed": "이 주소에서 허용되지 않는 요청 방식입니다",
    "conflict": "현재 상태와 맞지 않아 처리할 수 없습니다",
    "idempotency_key_reused": "이미 다른 요청에 쓰인 Idempotency-Key입니다",
    "payload_too_large": "파일이 너무 큽니다",
    "unsupported_media_type": "지원하지 않는 요청 형식입니다",
    "validation_error": "입력값이 올바르지 않습니다",
    "weak_password": "비밀번호가 규칙에 맞지 않습니다",
    "invalid_query": "검색 조건을 처리할 수 없습니다",
    "too_many_requests": "요청이 너무 많습니다. 잠시 후 다시 시도하십시오",
    "uri_too_long": "주소(URL)가 너무 깁니다",
    "request_header_fields_too_large": "요청 헤더가 너무 큽니다",
    "storage_unavailable": "저장소에 연결할 수 없습니다. 잠시 후 다시 시도하십시오",
    "search_unavailable": "검색을 사용할 수 없습니다. 잠시 후 다시 시도하십시오",
    "insufficient_storage": "저장 공간이 부족합니다",
    "storage_error": "문서를 저장하지 못했습니다",
    "internal_error": "서버 내부 오류입니다",
    "not_ready": "서비스가 아직 준비되지 않았습니다",
}
_GENERIC_KOREAN = "요청을 처리하지 못했습니다"
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")


_SEPARATOR = re.compile(r" · | / ")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{3}")


def _has_korean_of_its_own(message: str) -> bool:
    """Korean, then English after ` · ` (or ` / `); or Korean alone. Not English that
    merely quotes a Korean name (`no department 기록과`)."""
    head, *rest = _SEPARATOR.split(message, maxsplit=1)
    return bool(_HANGUL.search(head)) and (bool(rest) or not _ENGLISH_WORD.search(message))


def bilingual(code: str, message: str) -> str:
    """`message` in Korean and English: as it is if it has Korean of its own, else the
    Korean sentence of `code` first."""
    if _has_korean_of_its_own(message):
        return message
    korean = KOREAN_MESSAGES.get(code, _GENERIC_KOREAN)
    return f"{korean} · {message}" if message else korean


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one error shape, its message in Korean and English."""
    return {"error": {"code": code, "message": bilingual(code, message)}}


def _json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error answer, in the one shape, bilingual."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}

STORAGE_FULL_MESSAGE = (
    "저장 공간이 부족합니다. 아무것도 저장되지 않았으니 나중에 다시 보내십시오 / "
    "Storage is full: nothing was stored; send it again later"
)

NO_INTACT_COPY_MESSAGE = (
    "원본 파일의 온전한 사본이 주 저장소에도 복제본에도 없어 내려받을 수 없습니다. "
    "관리자에게 알리십시오 · no intact copy of the original on either site (missing or "
    "corrupt on both): nothing was sent; tell the administrator"
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


def _korean_validation(error: dict[str, Any]) -> str:
    """What a pydantic validation error says, in Korean (its kind and bound)."""
    ctx = error.get("ctx") or {}
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "필수 항목입니다"
    if kind == "string_too_long":
        return f"{ctx.get('max_length')}자 이하여야 합니다"
    if kind == "string_too_short":
        return f"{ctx.get('min_length')}자 이상이어야 합니다"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_from_float"):
        return "숫자여야 합니다"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"{bound} {'이상' if kind == 'greater_than_equal' else '초과'}이어야 합니다"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"{bound} {'이하' if kind == 'less_than_equal' else '미만'}이어야 합니다"
    if kind in ("literal_error", "enum"):
        return f"다음 중 하나여야 합니다: {ctx.get('expected', '')}".rstrip(": ")
    if kind in ("bool_parsing", "bool_type"):
        return "true 또는 false여야 합니다"
    if kind.startswith(("datetime", "date")):
        return "ISO 8601 날짜나 시각이어야 합니다"
    if kind == "string_pattern_mismatch":
        return "형식이 올바르지 않습니다"
    if kind.startswith("json") or kind == "model_attributes_type":
        return "JSON 형식이 올바르지 않습니다"
    return "값이 올바르지 않습니다"


def validation_message(error: dict[str, Any]) -> str:
    """One invalid parameter or field, named, in Korean and English."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    english = str(error.get("msg") or "invalid request")
    korean = _korean_validation(error)
    if not where:
        return f"{KOREAN_MESSAGES['validation_error']}: {korean} · {english}"
    return f"{where}: {korean} · {where}: {english}"


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
        # A query the index cannot run (too many words, beyond the result window) is
        # a parameter out of range: 422, as every invalid parameter.
        return _json(422, "invalid_query", str(err))

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

    @app.exception_handler(NoIntactCopyError)
    async def _no_intact_copy(_: Request, err: NoIntactCopyError) -> JSONResponse:
        # Missing or corrupt on the primary and on the replica: nothing is served.
        log.error("no intact copy: %s", err)
        return _json(
            503,
            "storage_unavailable",
            NO_INTACT_COPY_MESSAGE,
            {"Retry-After": "60"},
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
        return _json(422, "validation_error", validation_message(first))

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
