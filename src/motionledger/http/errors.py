"""Every error a request can meet, answered in the envelope with its status: the ledger's
own (motionledger.errors) and the framework's (validation, unknown route, wrong method)."""

from __future__ import annotations

from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from .. import logs
from ..errors import (
    Conflict,
    InvalidRequest,
    LedgerError,
    NotCaughtUp,
    NotFound,
    Refused,
    StorageRefused,
    Unavailable,
)
from .envelope import Failure, failure

log = logs.get(__name__)


class ApiError(Exception):
    """Raised by handlers: answered as `{ok: false, error: {code, message}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    503: "unavailable",
}
Request_ = Request[Any, Any, Any]


def _api_error(_: Request_, exc: ApiError) -> Response[Failure]:
    return failure(exc.status, exc.code, exc.message)


def _ledger_error(request: Request_, exc: LedgerError) -> Response[Failure]:
    if isinstance(exc, NotFound):
        return failure(404, "not_found", str(exc))
    if isinstance(exc, InvalidRequest):
        return failure(400, "invalid_request", str(exc))
    if isinstance(exc, StorageRefused):  # a parameter PostgreSQL cannot take (a read's)
        return failure(400, "invalid_request", f"a parameter the database refused: {exc}")
    if isinstance(exc, Conflict):
        return failure(409, exc.code, exc.message)
    if isinstance(exc, Refused):
        return failure(413 if exc.code == "too_large" else 400, exc.code, exc.message)
    if isinstance(exc, NotCaughtUp):  # the read tables did not reach what was asked in time
        return failure(503, "not_caught_up", str(exc), {"Retry-After": "1"})
    if isinstance(exc, Unavailable):
        return failure(503, "unavailable", str(exc) or type(exc).__name__, {"Retry-After": "1"})
    return _unexpected(request, exc)


def _validation(_: Request_, exc: ValidationException) -> Response[Failure]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{item.get('key') or item.get('source') or 'body'}: {item.get('message')}"
        for item in extra
        if isinstance(item, dict)
    )
    return failure(400, "invalid_request", details or str(exc.detail))


def _http(_: Request_, exc: HTTPException) -> Response[Failure]:
    status = exc.status_code
    code = _CODES.get(status, "error")
    message = exc.detail or code
    if isinstance(exc, NotFoundException) and message == "Not Found":
        message = "no such route"
    headers = dict(exc.headers or {})
    return failure(status, code, message, headers or None)


def _unexpected(request: Request_, exc: Exception) -> Response[Failure]:
    log.exception("http_unhandled_error", path=request.url.path, error=str(exc))
    return failure(500, "internal_error", "unexpected error; see logs")


EXCEPTION_HANDLERS: Final[dict[Any, Any]] = {
    ApiError: _api_error,
    LedgerError: _ledger_error,
    ValidationException: _validation,
    MethodNotAllowedException: _http,
    HTTPException: _http,
    Exception: _unexpected,
}
