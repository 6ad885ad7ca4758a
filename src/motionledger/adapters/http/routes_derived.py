"""GET /production/cut-log, /hero-windows and /alignment, and the asOf of the timeline: the
answers the shoot's later systems ask for, computed by the ledger (services.derived).
Parameters are validated here (a 400 names the parameter); every answer carries the
`Ledger-Position` it reflects."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from ...domain.derived_answers import Alignment, CutLog, HeroWindow
from ...domain.events import ID_PATTERN, MAX_EPOCH_MS
from ...services.as_of import timeline_as_of
from ...services.derived import Answer, Derived, NotCaughtUp
from .envelope import ApiError, ErrorBody, Failure
from .routes_common import JSON, documented, production

LEDGER_POSITION: Final = "Ledger-Position"
_ERRORS: Final = (400, 401, 404, 503)

SessionId = Annotated[str, Parameter(pattern=ID_PATTERN, description="the session's id")]
Ms = Annotated[int | None, Parameter(ge=0, le=MAX_EPOCH_MS, description="epoch ms")]
AsOf = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=MAX_EPOCH_MS,
        description="epoch ms: the answer as the ledger held it then (only log rows "
        "recorded at or before it, in ms rounded down, count)",
    ),
]


def derived(state: State) -> Derived:
    return Derived(production(state).pool, state.resources.settings.write_wait_ms)


def _range(from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
    low = 0 if from_ms is None else from_ms
    high = MAX_EPOCH_MS if to_ms is None else to_ms
    if low > high:
        raise ApiError(400, "invalid_request", f"fromMs ({low}) must not be after toMs ({high})")
    return low, high


async def answered(call: Awaitable[Answer]) -> Response[Any]:
    """200 with the answer and the position it reflects; 503 `not_caught_up` when an asOf
    read waited past the budget for the read tables to reach it."""
    try:
        body, position = await call
    except NotCaughtUp as behind:
        return Response(
            Failure(error=ErrorBody("not_caught_up", str(behind))),
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return Response(
        b'{"ok":true,"result":' + body + b"}",
        media_type=JSON,
        headers={LEDGER_POSITION: str(position)},
    )


@get(
    "/cut-log",
    operation_class=documented(CutLog, errors=_ERRORS),
    summary="The program cut log: segments (camera, start, end, held) and time on air",
    description="Cut, hold and release director events in timestampMs order (ties: log "
    "position) drive (camera, held); zero-length segments are dropped, equal neighbours "
    "merged; the last segment's endMs is null. With fromMs/toMs only the segments "
    "overlapping [fromMs, toMs] (start <= toMs, end null or > fromMs), unclipped, the "
    "earliest `limit`. onAirMs sums the returned segments that have an end, per camera.",
)
async def get_cut_log(
    state: State,
    sessionId: SessionId,
    fromMs: Ms = None,
    toMs: Ms = None,
    asOf: AsOf = None,
    limit: Annotated[
        int, Parameter(ge=1, le=10_000, description="at most this many segments (1-10000)")
    ] = 1000,
) -> Response[Any]:
    low, high = _range(fromMs, toMs)
    return await answered(derived(state).cut_log(sessionId, low, high, limit, asOf))


@get(
    "/hero-windows",
    operation_class=documented(list[HeroWindow], errors=_ERRORS),
    summary="Hero-pose markers padded and merged into windows, with their cameras and stills",
    description="Each hero_pose_marker at t gives [t - padMs, t + padMs]; a window starting at "
    "or before the previous one's end joins it. stills: still candidates with timestampMs in "
    "the window (both ends inclusive), best score first. With fromMs/toMs only the windows "
    "overlapping [fromMs, toMs] (start <= toMs and end >= fromMs); the earliest `limit`.",
)
async def get_hero_windows(
    state: State,
    sessionId: SessionId,
    padMs: Annotated[int, Parameter(ge=0, le=60_000, description="padding (0-60000 ms)")] = 1500,
    limit: Annotated[
        int, Parameter(ge=1, le=1000, description="at most this many windows (1-1000)")
    ] = 100,
    fromMs: Ms = None,
    toMs: Ms = None,
) -> Response[Any]:
    low, high = _range(fromMs, toMs)
    return await answered(derived(state).hero_windows(sessionId, padMs, limit, low, high))


@get(
    "/alignment",
    operation_class=documented(Alignment, errors=_ERRORS),
    summary="Cuts, hero-pose and still markers against the music: nearest bar, phrase, section",
    description="Items: cut, hero_pose_marker and still_candidate_marker director events in "
    "[fromMs, toMs] (both inclusive) by (timestampMs, position), the first `limit`; each with "
    "its nearest bar_fire (a tie: the earlier), its phrase, and the section and tempo of the "
    "latest music moment at or before it. medianAbsOffsetMs: the median |offsetMs|.",
)
async def get_alignment(
    state: State,
    sessionId: SessionId,
    fromMs: Ms = None,
    toMs: Ms = None,
    limit: Annotated[
        int, Parameter(ge=1, le=1000, description="at most this many items (1-1000)")
    ] = 100,
) -> Response[Any]:
    low, high = _range(fromMs, toMs)
    return await answered(derived(state).alignment(sessionId, low, high, limit))


async def timeline_as_of_answer(
    state: State, session_id: str, window: tuple[int, int], limit: int, as_of: int
) -> Response[Any]:
    """The timeline route's answer when it is given asOf."""
    return await answered(timeline_as_of(derived(state), session_id, window, limit, as_of))


DERIVED_ROUTES: Final[list[Any]] = [get_cut_log, get_hero_windows, get_alignment]
