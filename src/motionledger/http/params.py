"""The query parameters the read routes share, each declared once (a 400 names the
parameter: the routes' arguments carry the query names, camelCase, for that)."""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import Parameter

from ..domain.events import ID_PATTERN, MAX_EPOCH_MS
from ..services.queries import CURSOR_PATTERN

MAX_LIMIT: Final = 1000

SessionId = Annotated[str, Parameter(pattern=ID_PATTERN, description="the session's id")]
Limit = Annotated[
    int,
    Parameter(ge=1, le=MAX_LIMIT, description="at most this many rows (1-1000)"),
]
# Litestar drops a minimum of 0 from the OpenAPI document (it tests `ge` for truth): say it
EpochMs = Annotated[
    int,
    Parameter(
        ge=0,
        le=MAX_EPOCH_MS,
        schema_extra={"minimum": 0},
        description="epoch milliseconds (0 to 253402300799999)",
    ),
]
Cursor = Annotated[
    str,
    Parameter(
        pattern=CURSOR_PATTERN,
        max_length=40,
        description="a continueCursor from the previous page (empty: the first page)",
    ),
]
CameraFilter = Annotated[
    str | None,
    Parameter(pattern=ID_PATTERN, description="only this camera's rows"),
]
# the log's positions are bigint: any of them may be asked for
MAX_POSITION: Final = 2**63 - 1
MinPosition = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=MAX_POSITION,
        schema_extra={"minimum": 0},
        description="a log position (e.g. a write's Ledger-Position): the answer waits, up to "
        "the write wait budget, until it reflects every event up to it (else 503 "
        "not_caught_up)",
    ),
]
