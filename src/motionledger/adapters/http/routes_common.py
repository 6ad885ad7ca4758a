"""What the /production routes share: the envelope as bytes, OpenAPI from the Structs, and
the mapping of service errors to status codes (so handlers read as the happy path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, RequestBody

from ...services.queries import BadCursor, NotFound
from ...services.writes import Refused, Unavailable
from ..postgres.database import DB_DOWN
from .envelope import ApiError, Failure, Ok, failure

if TYPE_CHECKING:
    from ...services.production import Production

JSON: Final = MediaType.JSON


def ok(result: bytes, status: int = 200) -> Response[bytes]:
    """`{"ok": true, "result": <result>}` around JSON that is already encoded."""
    return Response(b'{"ok":true,"result":' + result + b"}", status_code=status, media_type=JSON)


def production(state: State) -> Production:
    """The services behind the routes, or 503 while the daemon is still connecting."""
    resources = state.resources
    found: Production | None = getattr(resources, "production", None)
    if found is None:
        raise ApiError(503, "unavailable", "the ledger is starting: database or broker not up")
    return found


# -- OpenAPI from the Structs -----------------------------------------------------------
def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def json_schema(tp: Any) -> dict[str, Any]:
    """msgspec's JSON Schema of `tp`, references resolved in place."""
    schema = msgspec.json.schema(tp)
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = _inline(schema, defs)
    return result


_ERRORS: Final = {
    400: "a body or parameter fails its schema (nothing was published)",
    401: "no or wrong bearer token",
    404: "unknown session or id",
    409: "judged and rejected by the ledger's state (kept as a dead letter)",
    413: "body over the size limit",
    503: "broker or database unavailable",
}


def documented(
    result: Any,
    *,
    body: Any = None,
    errors: tuple[int, ...] = (400, 401, 503),
    pending: Any = None,
) -> type[Operation]:
    """An OpenAPI operation whose body and answers are the given Structs' schemas."""

    def media(tp: Any) -> dict[str, OpenAPIMediaType]:
        return {JSON: OpenAPIMediaType(schema=json_schema(tp))}  # type: ignore[arg-type]

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            responses: dict[str, OpenAPIResponse] = {
                "200": OpenAPIResponse(description="done", content=media(Ok[result])),
            }
            if pending is not None:
                responses["202"] = OpenAPIResponse(
                    description="in the stream, not decided within the wait budget",
                    content=media(Ok[pending]),
                )
            for status in errors:
                responses[str(status)] = OpenAPIResponse(
                    description=_ERRORS[status], content=media(Failure)
                )
            self.responses = dict(responses)
            if body is not None:
                self.request_body = RequestBody(content=media(body), required=True)

    return Documented


# -- service errors as answers ------------------------------------------------------------
def _not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[Failure]:
    return failure(404, "not_found", str(exc))


def _bad_cursor(_: Request[Any, Any, Any], exc: BadCursor) -> Response[Failure]:
    return failure(400, "invalid_request", f"cursor: {exc}")


def _refused(_: Request[Any, Any, Any], exc: Refused) -> Response[Failure]:
    return failure(413 if exc.code == "too_large" else 400, exc.code, exc.message)


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Failure]:
    return failure(503, "unavailable", str(exc) or f"database unavailable ({type(exc).__name__})")


EXCEPTION_HANDLERS: Final[dict[Any, Any]] = {
    NotFound: _not_found,
    BadCursor: _bad_cursor,
    Refused: _refused,
    Unavailable: _unavailable,
    **dict.fromkeys(DB_DOWN, _unavailable),
}
