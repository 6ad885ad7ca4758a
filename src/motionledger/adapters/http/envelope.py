"""The response envelope every route answers with, errors from the framework included."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from ... import logs

log = logs.get(__name__)
T = TypeVar("T")


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str


class Ok(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    ok: bool = True
    result: T


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool = False
    error: ErrorBody


class ApiError(Exception):
    """Raised by handlers: answered as `{ok: false, error: {code, message}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def failure(status: int, code: str, message: str) -> Response[Failure]:
    return Response(Failure(error=ErrorBody(code, message)), status_code=status)


_CODES = {
    HTTP_400_BAD_REQUEST: "bad_request",
    401: "unauthorized",
    HTTP_404_NOT_FOUND: "not_found",
    HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: "too_large",
    503: "unavailable",
}


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[Failure]:
    return failure(exc.status, exc.code, exc.message)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Failure]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{item.get('key') or item.get('source') or 'body'}: {item.get('message')}"
        for item in extra
        if isinstance(item, dict)
    )
    return failure(HTTP_400_BAD_REQUEST, "invalid_request", details or str(exc.detail))


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Failure]:
    status = exc.status_code
    code = _CODES.get(status, "error")
    message = exc.detail or code
    if isinstance(exc, NotFoundException) and message == "Not Found":
        message = "no such route"
    if isinstance(exc, MethodNotAllowedException):
        message = f"{message}"
    return failure(status, code, message)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Failure]:
    log.exception("http_unhandled_error", path=request.url.path, error=str(exc))
    return failure(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "unexpected error; see logs")


EXCEPTION_HANDLERS: Any = {
    ApiError: _api_error,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
