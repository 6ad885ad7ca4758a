"""GET /production/*: the eight read routes. Parameters are validated here (a 400 names
the parameter: the Python arguments carry the query names, camelCase, for that); the answers
are built by Postgres and passed through (services.queries)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from ...domain.events import ID_PATTERN, MAX_EPOCH_MS, DirectorEventType, SessionType
from ...domain.rows import (
    AssetRow,
    CameraRow,
    EventsPage,
    MusicMomentRow,
    SessionRow,
    StillCandidateRow,
    Timeline,
)
from .routes_common import documented, ok, production
from .routes_derived import AsOf, timeline_as_of_answer

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
_READ_ERRORS: Final = (400, 401, 404, 503)

SessionId = Annotated[str, Parameter(pattern=ID_PATTERN, description="the session's id")]
Limit = Annotated[
    int,
    Parameter(ge=1, le=MAX_LIMIT, description="at most this many rows (1-1000)"),
]
CameraFilter = Annotated[
    str | None,
    Parameter(pattern=ID_PATTERN, description="only this camera's rows"),
]


@get(
    "/session",
    operation_class=documented(SessionRow, errors=_READ_ERRORS),
    summary="A session",
)
async def get_session(state: State, sessionId: SessionId) -> Response[bytes]:
    return ok(await production(state).queries.session(sessionId))


@get(
    "/session/active",
    operation_class=documented(SessionRow | None, errors=(400, 401, 503)),
    summary="The latest-started session not complete or cancelled (or null)",
)
async def get_active_session(
    state: State,
    sessionType: Annotated[SessionType | None, Parameter()] = None,
) -> Response[bytes]:
    return ok(await production(state).queries.active(sessionType))


@get(
    "/session/timeline",
    operation_class=documented(Timeline, errors=_READ_ERRORS),
    summary="A session's timeline: the latest `limit` rows of each kind within a window",
    description="Windows are inclusive at both ends and apply to director events, stills and "
    "music moments (by timestampMs); all cameras by cameraId; the latest `limit` assets by "
    "createdAt. Every list is in ascending order. With asOf: as the ledger held it then.",
)
async def get_timeline(
    state: State,
    sessionId: SessionId,
    windowStartMs: Annotated[int | None, Parameter(ge=0, le=MAX_EPOCH_MS)] = None,
    windowEndMs: Annotated[int | None, Parameter(ge=0, le=MAX_EPOCH_MS)] = None,
    limit: Limit = DEFAULT_LIMIT,
    asOf: AsOf = None,
) -> Response[bytes]:
    start = 0 if windowStartMs is None else windowStartMs
    end = MAX_EPOCH_MS if windowEndMs is None else windowEndMs
    if asOf is not None:  # the derived reads' asOf (routes_derived)
        return await timeline_as_of_answer(state, sessionId, (start, end), limit, asOf)
    return ok(await production(state).queries.timeline(sessionId, start, end, limit))


@get(
    "/cameras",
    operation_class=documented(list[CameraRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's cameras by cameraId",
)
async def get_cameras(state: State, sessionId: SessionId) -> Response[bytes]:
    return ok(await production(state).queries.cameras(sessionId))


@get(
    "/events",
    operation_class=documented(EventsPage, errors=_READ_ERRORS),
    summary="A page of director events by timestampMs, then log position",
    description="Pass continueCursor back as cursor for the next page. A page shorter than "
    "numItems has isDone true; the cursor stays valid while new events arrive.",
)
async def get_events(
    state: State,
    sessionId: SessionId,
    numItems: Annotated[
        int, Parameter(ge=1, le=MAX_LIMIT, description="page size (1-1000)")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Parameter(max_length=200, description="a continueCursor")] = None,
    eventType: Annotated[DirectorEventType | None, Parameter()] = None,
    cameraId: CameraFilter = None,
) -> Response[bytes]:
    queries = production(state).queries
    return ok(await queries.events(sessionId, numItems, cursor, eventType, cameraId))


@get(
    "/stills",
    operation_class=documented(list[StillCandidateRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's still candidates by score (highest first), then timestampMs",
)
async def get_stills(
    state: State,
    sessionId: SessionId,
    limit: Limit = DEFAULT_LIMIT,
    cameraId: CameraFilter = None,
    favoritesOnly: Annotated[bool, Parameter()] = False,
) -> Response[bytes]:
    queries = production(state).queries
    return ok(await queries.stills(sessionId, limit, cameraId, favoritesOnly))


@get(
    "/music-moments",
    operation_class=documented(list[MusicMomentRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's music moments by timestampMs",
)
async def get_music_moments(
    state: State, sessionId: SessionId, limit: Limit = DEFAULT_LIMIT
) -> Response[bytes]:
    return ok(await production(state).queries.music(sessionId, limit))


@get(
    "/assets",
    operation_class=documented(list[AssetRow], errors=_READ_ERRORS),  # type: ignore[valid-type]
    summary="A session's assets by createdAt",
)
async def get_assets(
    state: State,
    sessionId: SessionId,
    assetType: Annotated[str | None, Parameter(min_length=1)] = None,
) -> Response[bytes]:
    return ok(await production(state).queries.assets(sessionId, assetType))


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
