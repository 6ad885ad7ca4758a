"""The response envelope every route answers with: `{"ok": true, "result": ...}` or
`{"ok": false, "error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

from typing import Final, Generic, TypeVar

import msgspec
from litestar import Response
from litestar.enums import MediaType

T = TypeVar("T")
JSON: Final = MediaType.JSON
# every 200 answer's log position: a write's event's, or what a read reflects
LEDGER_POSITION: Final = "Ledger-Position"


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str


class Ok(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    ok: bool = True
    result: T


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool = False
    error: ErrorBody


def ok(result: bytes, status: int = 200, position: int | None = None) -> Response[bytes]:
    """`{"ok": true, "result": <result>}` around JSON that is already encoded; `position`:
    the log position the answer reflects or wrote (the `Ledger-Position` header)."""
    headers = None if position is None else {LEDGER_POSITION: str(position)}
    return Response(
        b'{"ok":true,"result":' + result + b"}",
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


def failure(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Failure]:
    return Response(Failure(error=ErrorBody(code, message)), status_code=status, headers=headers)
