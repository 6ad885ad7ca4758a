"""GET /production/*: the eight read routes. Parameters are validated here (a 400 names
the parameter: the Python arguments carry the query names, camelCase, for that); the answers
are built by Postgres and passed through (services.queries), each with the log position it
reflects (`Ledger-Position`); `minPosition` makes a read wait for its tables to reach it."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.params import Parameter

from ..domain.events import MAX_EPOCH_MS, STORABLE_TEXT, DirectorEventType, SessionType
from ..domain.rows import (
    AssetRow,
    CameraRow,
    EventsPage,
    MusicMomentRow,
    SessionRow,
    StillCandidateRow,
    Timeline,
)
from .deps import Derive, Reads
from .derived import AsOf, answered
from .openapi import documented
from .params import MAX_LIMIT, CameraFilter, Cursor, EpochMs, Limit, MinPosition, SessionId

DEFAULT_LIMIT: Final = 100
_READ_ERRORS: Final = (400, 401, 404, 503)


@get(
    "/session",
    operation_class=documented(SessionRow, errors=_READ_ERRORS),
    summary="A session",
)
async def get_session(
    reads: Reads, sessionId: SessionId, minPosition: MinPosition = None
) -> Response[bytes]:
    return answered(await reads.at_least(minPosition, lambda: reads.session(sessionId)))


@get(
    "/session/active",
    operation_class=documented(SessionRow | None, errors=_READ_ERRORS),
    summary="The latest-started session not complete or cancelled (or null)",
)
async def get_active_session(
    reads: Reads,
    sessionType: Annotated[SessionType | None, Parameter()] = None,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(await reads.at_least(minPosition, lambda: reads.active(sessionType)))


@get(
    "/session/timeline",
    operation_class=documented(Timeline, errors=_READ_ERRORS),
    summary="A session's timeline: the latest `limit` rows of each kind within a window",
    description="Windows are inclusive at both ends and apply to director events, stills and "
    "music moments (by timestampMs); all cameras by cameraId; the latest `limit` assets by "
    "createdAt. Every list is in ascending order. With asOf: as the ledger held it then.",
)
async def get_timeline(
    reads: Reads,
    derived: Derive,
    sessionId: SessionId,
    windowStartMs: EpochMs = 0,
    windowEndMs: EpochMs = MAX_EPOCH_MS,
    limit: Limit = DEFAULT_LIMIT,
    asOf: AsOf = None,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    window = (windowStartMs, windowEndMs)
    if asOf is not None:  # as the ledger held it then (services.as_of)
        at = asOf
        return answered(
            await derived.at_least(
                minPosition,
                lambda: derived.timeline_as_of(sessionId, window, limit, at),
                as_of=True,
            )
        )
    return answered(
        await reads.at_least(minPosition, lambda: reads.timeline(sessionId, *window, limit))
    )


@get(
    "/cameras",
    operation_class=documented(list[CameraRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's cameras by cameraId",
)
async def get_cameras(
    reads: Reads, sessionId: SessionId, minPosition: MinPosition = None
) -> Response[bytes]:
    return answered(await reads.at_least(minPosition, lambda: reads.cameras(sessionId)))


@get(
    "/events",
    operation_class=documented(EventsPage, errors=_READ_ERRORS),
    summary="A page of director events by timestampMs, then log position",
    description="Pass continueCursor back as cursor for the next page. A page shorter than "
    "numItems has isDone true; the cursor stays valid while new events arrive.",
)
async def get_events(
    reads: Reads,
    sessionId: SessionId,
    numItems: Annotated[
        int, Parameter(ge=1, le=MAX_LIMIT, description="page size (1-1000)")
    ] = DEFAULT_LIMIT,
    cursor: Cursor = "",
    eventType: Annotated[DirectorEventType | None, Parameter()] = None,
    cameraId: CameraFilter = None,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(
        await reads.at_least(
            minPosition, lambda: reads.events(sessionId, numItems, cursor, eventType, cameraId)
        )
    )


@get(
    "/stills",
    operation_class=documented(list[StillCandidateRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's still candidates by score (highest first), then timestampMs",
)
async def get_stills(
    reads: Reads,
    sessionId: SessionId,
    limit: Limit = DEFAULT_LIMIT,
    cameraId: CameraFilter = None,
    favoritesOnly: Annotated[bool, Parameter()] = False,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(
        await reads.at_least(
            minPosition, lambda: reads.stills(sessionId, limit, cameraId, favoritesOnly)
        )
    )


@get(
    "/music-moments",
    operation_class=documented(list[MusicMomentRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's music moments by timestampMs",
)
async def get_music_moments(
    reads: Reads,
    sessionId: SessionId,
    limit: Limit = DEFAULT_LIMIT,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(await reads.at_least(minPosition, lambda: reads.music(sessionId, limit)))


@get(
    "/assets",
    operation_class=documented(list[AssetRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's assets by createdAt",
)
async def get_assets(
    reads: Reads,
    sessionId: SessionId,
    assetType: Annotated[str | None, Parameter(min_length=1, pattern=STORABLE_TEXT)] = None,
    minPosition: MinPosition = None,
) -> Response[bytes]:
    return answered(await reads.at_least(minPosition, lambda: reads.assets(sessionId, assetType)))


READ_ROUTES: Final[list[Any]] = [
    get_session,
    get_active_session,
    get_timeline,
    get_cameras,
    get_events,
    get_stills,
    get_music_moments,
    get_assets,
]
