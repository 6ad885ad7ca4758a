"""OpenAPI from the Structs: each route's body and answers are documented by the same Structs
that decode and encode them, so a field is never described twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from ..domain.events import json_value_schema, with_json_values
from .envelope import JSON, LEDGER_POSITION, Failure, Ok


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


JSON_VALUE_REF: Final = "#/components/schemas/JsonValue"

# The bearer token of MOTIONLEDGER_API_TOKEN: declared once, required by /production/* only
# (the probes and /metrics stay open), so a docs page's "Authorize" sends it.
BEARER: Final = "bearer"
COMPONENTS: Final = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="MOTIONLEDGER_API_TOKEN; needed only when the server sets it",
        )
    }
)
NEEDS_TOKEN: Final[list[SecurityRequirement]] = [{BEARER: []}]
DESCRIPTION: Final = (
    'Production ledger for AI-directed multicam shoots. Every answer is `{"ok": true, '
    '"result": ...}` or `{"ok": false, "error": {"code", "message"}}`.\n\n'
    "A bearer token is needed only when the server sets MOTIONLEDGER_API_TOKEN: then every "
    '/production request needs `Authorization: Bearer <token>` ("Authorize" on this page). '
    "/healthz, /readyz and /metrics are always open.\n\n"
    "Every 200 answer carries `Ledger-Position: <n>`: a write's event's log position, or the "
    "position a read's answer reflects. Pass it as `minPosition` to any read to see that "
    "write, through any `serve` on the same database.\n\n"
    "**Follow a session live**: `GET /production/session/live?sessionId=<id>` answers "
    "Server-Sent Events (`text/event-stream`; not listed below, as no generated client "
    "could call a stream that never ends): every event of the session after `Last-Event-ID` "
    "(or `after`, default from the start), each once in log order, as `id: <position>`, "
    "`event: <type>`, `data: <the event as logged>`, then new ones as they are committed; a "
    "comment line at least every 15 s. Try `curl -N` or `motionledger follow <sessionId>`."
)


def json_schema(tp: Any) -> dict[str, Any]:
    """msgspec's JSON Schema of `tp`, references resolved in place (but the recursive one of
    a free JSON value, a component of the document: see `components`)."""
    schema = msgspec.json.schema(tp)
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = with_json_values(_inline(schema, defs), JSON_VALUE_REF)
    return result


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """The served document with the schemas the operations refer to but Litestar does not
    generate (it replaces a config's component schemas with its own): the free JSON value,
    defined once and recursively."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("JsonValue", json_value_schema(JSON_VALUE_REF))
    return document


class OpenAPIJson(JsonRenderPlugin):
    """/schema/openapi.json, completed (see `completed`)."""

    @staticmethod
    def render_json(request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return JsonRenderPlugin.render_json(request, completed(openapi_schema))


_ERRORS: Final = {
    400: "a body or parameter fails its schema (nothing was published)",
    401: "no or wrong bearer token",
    404: "unknown session or id, or a minPosition beyond the log",
    409: "judged and rejected by the ledger's state (kept as a dead letter)",
    413: "body over the size limit",
    503: "broker or database unavailable",
}


_POSITION_HEADER: Final = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    required=True,
    description="a write: its event's log position (a batch: the last one's); a read: a "
    "position p such that the answer reflects every event at or below p (pass it as "
    "minPosition to any read, on any process of the ledger)",
)


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
                "200": OpenAPIResponse(
                    description="done",
                    content=media(Ok[result]),
                    headers={LEDGER_POSITION: _POSITION_HEADER},
                ),
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
