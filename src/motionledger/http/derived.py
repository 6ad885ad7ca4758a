"""GET /production/cut-log, /hero-windows and /alignment, and the asOf of the timeline: the
answers the shoot's later systems ask for, computed by the ledger (services.derived).
Parameters are validated here (a 400 names the parameter); every answer carries the
`Ledger-Position` it reflects."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.params import Parameter

from ..domain.derived_answers import Alignment, CutLog, HeroWindow
from ..domain.events import MAX_EPOCH_MS
from ..services.positions import Answer
from .deps import Derive
from .envelope import ok
from .openapi import documented
from .params import EpochMs, MinPosition, SessionId

_ERRORS: Final = (400, 401, 404, 503)

AsOf = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=MAX_EPOCH_MS,
        schema_extra={"minimum": 0},
        description="epoch ms: the answer as the ledger held it then (only log rows "
        "recorded at or before it, in ms rounded down, count)",
    ),
]
# The literal overlap rule applies to any range: fromMs after toMs is no error (a segment
# or window that spans the gap still overlaps it).


def answered(answer: Answer) -> Response[bytes]:
    """200 with the answer and the position it reflects (`Ledger-Position`)."""
    body, position = answer
    return ok(body, position=position)


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
    derived: Derive,
    sessionId: SessionId,
    fromMs: EpochMs = 0,
    toMs: EpochMs = MAX_EPOCH_MS,
    asOf: AsOf = None,
    limit: Annotated[
        int, Parameter(ge=1, le=10_000, description="at most this many segments (1-10000)")
    ] = 1000,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(
        await derived.at_least(
            minPosition,
            lambda: derived.cut_log(sessionId, fromMs, toMs, limit, asOf),
            as_of=asOf is not None,
        )
    )


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
    derived: Derive,
    sessionId: SessionId,
    padMs: Annotated[int, Parameter(ge=0, le=60_000, description="padding (0-60000 ms)")] = 1500,
    limit: Annotated[
        int, Parameter(ge=1, le=1000, description="at most this many windows (1-1000)")
    ] = 100,
    fromMs: EpochMs = 0,
    toMs: EpochMs = MAX_EPOCH_MS,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(
        await derived.at_least(
            minPosition, lambda: derived.hero_windows(sessionId, padMs, limit, fromMs, toMs)
        )
    )


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
    derived: Derive,
    sessionId: SessionId,
    fromMs: EpochMs = 0,
    toMs: EpochMs = MAX_EPOCH_MS,
    limit: Annotated[
        int, Parameter(ge=1, le=1000, description="at most this many items (1-1000)")
    ] = 100,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(
        await derived.at_least(
            minPosition, lambda: derived.alignment(sessionId, fromMs, toMs, limit)
        )
    )


DERIVED_ROUTES: Final[list[Any]] = [get_cut_log, get_hero_windows, get_alignment]
