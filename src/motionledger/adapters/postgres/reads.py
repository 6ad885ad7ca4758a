"""The query endpoint's SQL. Rows come out of Postgres as compact JSON text (their fields
named by `projection_sql.row_fields`, derived from the projection declarations), so an
answer is passed through, never decoded and re-encoded row by row. Every list reads one
index in its order and stops at its limit; paging is by keyset, never OFFSET.

Every read is one statement, so one snapshot, that also reads the lowest checkpoint of the
read tables it uses (`Read.position`: the answer reflects every event at or below it) and
whether the session exists (a 404 for an empty list needs no second round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, get_args

import asyncpg

from ...domain.events import EndStatus, SessionStatus
from ...domain.projections import (
    ASSETS,
    CAMERAS,
    DIRECTOR_EVENTS,
    MUSIC_MOMENTS,
    SESSIONS,
    STILL_CANDIDATES,
    Projection,
)
from .derived import known_columns
from .errors import translating
from .projection_sql import row_fields

# ids are ASCII: order them by code point, as clients' own sorts do, whatever the collation
_C: Final = 'COLLATE "C"'
_ROW: Final = "row_to_json(r)::text"


def _from(projection: Projection) -> str:
    return f"{projection.table} t {row_fields(projection)}"


def _array(order: str) -> str:
    """The rows of a query as one JSON array (compact, in `order`)."""
    return f"coalesce('[' || string_agg({_ROW}, ',' ORDER BY {order}) || ']', '[]')"


def _tables(*projections: Projection) -> str:
    return "ARRAY[" + ", ".join(f"'{p.name}'" for p in projections) + "]::text[]"


def _known(*projections: Projection) -> str:
    """The checkpoint of the sessions table and `projections`, and the session ($1)."""
    return known_columns(_tables(SESSIONS, *projections))


def _json_array(select: str) -> str:
    """The rows of `select` (one JSON text column, in its ORDER BY) as one JSON array."""
    return f"'[' || array_to_string(ARRAY({select}), ',') || ']'"


SESSION: Final = f"SELECT {_known()}, (SELECT {_ROW} FROM {_from(SESSIONS)} WHERE t.id = $1) AS j"

ACTIVE_STATUSES: Final = tuple(s for s in get_args(SessionStatus) if s not in get_args(EndStatus))
# one index range per open status (status, started_at), newest first; ties: the later start
_ACTIVE: Final = (
    "SELECT j FROM ("
    + " UNION ALL ".join(
        f"(SELECT {_ROW} AS j, t.started_at, t.position FROM {_from(SESSIONS)}"
        f" WHERE t.status = '{status}' ORDER BY t.started_at DESC, t.position DESC LIMIT 1)"
        for status in ACTIVE_STATUSES
    )
    + ") x ORDER BY started_at DESC, position DESC LIMIT 1"
)
_OPEN: Final = ", ".join(f"'{s}'" for s in ACTIVE_STATUSES)
_ACTIVE_OF_TYPE: Final = (
    f"SELECT {_ROW} FROM {_from(SESSIONS)}"
    f" WHERE t.session_type = $1 AND t.status IN ({_OPEN})"
    " ORDER BY t.started_at DESC, t.position DESC LIMIT 1"
)
_SESSIONS_CHECKPOINT: Final = (
    "(SELECT position FROM production.projection_state WHERE projection = 'sessions')"
)
ACTIVE: Final = f"SELECT {_SESSIONS_CHECKPOINT}, NULL::bigint, ({_ACTIVE})"
ACTIVE_OF_TYPE: Final = f"SELECT {_SESSIONS_CHECKPOINT}, NULL::bigint, ({_ACTIVE_OF_TYPE})"


def _join(order: str) -> str:
    """Subquery rows `x.j` (JSON text) as one JSON array, in `order`."""
    return f"coalesce('[' || string_agg(x.j, ',' ORDER BY {order}) || ']', '[]')"


def _latest_in_window(projection: Projection, where: str = "") -> str:
    """The `limit` latest rows within [start, end] (both inclusive), in ascending order
    (`where`: more conditions on the rows `t`, for the timeline asOf)."""
    return (
        f"(SELECT {_join('x.ts, x.pos')} FROM ("
        f"SELECT {_ROW} AS j, t.timestamp_ms AS ts, t.position AS pos FROM {_from(projection)}"
        f" WHERE t.session_id = $1 AND t.timestamp_ms BETWEEN $2 AND $3{where}"
        " ORDER BY t.timestamp_ms DESC, t.position DESC LIMIT $4) x)"
    )


_TIMELINE: Final = f"""
SELECT '{{"session":' || s.j
    || ',"cameras":' || (SELECT {_array(f"t.camera_id {_C}")} FROM {_from(CAMERAS)}
                          WHERE t.session_id = $1)
    || ',"directorEvents":' || {_latest_in_window(DIRECTOR_EVENTS)}
    || ',"stillCandidates":' || {_latest_in_window(STILL_CANDIDATES)}
    || ',"musicMoments":' || {_latest_in_window(MUSIC_MOMENTS)}
    || ',"assets":' || (SELECT {_join("x.at, x.pos")}
                          FROM (SELECT {_ROW} AS j, t.created_at AS at, t.position AS pos
                                  FROM {_from(ASSETS)} WHERE t.session_id = $1
                                 ORDER BY t.created_at DESC, t.position DESC LIMIT $4) x)
    || '}}'
  FROM (SELECT {_ROW} AS j FROM {_from(SESSIONS)} WHERE t.id = $1) s
"""
TIMELINE: Final = (
    f"SELECT {_known(CAMERAS, DIRECTOR_EVENTS, STILL_CANDIDATES, MUSIC_MOMENTS, ASSETS)},"
    f" ({_TIMELINE}) AS j"
)

CAMERAS_OF: Final = f"SELECT {_known(CAMERAS)}, " + _json_array(
    f"SELECT {_ROW} FROM {_from(CAMERAS)} WHERE t.session_id = $1 ORDER BY t.camera_id {_C}"
)
CAMERA: Final = f"SELECT {_ROW} FROM {_from(CAMERAS)} WHERE t.id = $1"
STILL: Final = f"SELECT {_ROW} FROM {_from(STILL_CANDIDATES)} WHERE t.id = $1"


def events_page(*, event_type: bool, camera: bool) -> str:
    """Director events after the keyset ($2, $3) = (timestampMs, position), $4 of them,
    optionally of one eventType ($5) and camera ($6 or $5): each variant its own statement,
    so each gets the plan of its own index. The page is an array of (timestampMs,
    position, row JSON)."""
    filters, n = [], 5
    if event_type:
        filters.append(f" AND t.event_type = ${n}")
        n += 1
    if camera:
        filters.append(f" AND t.camera_id = ${n}")
    page = (
        f"SELECT ROW(t.timestamp_ms, t.position, {_ROW}) FROM {_from(DIRECTOR_EVENTS)}"
        " WHERE t.session_id = $1 AND (t.timestamp_ms, t.position) > ($2::bigint, $3::bigint)"
        + "".join(filters)
        + " ORDER BY t.timestamp_ms, t.position LIMIT $4"
    )
    return f"SELECT {_known(DIRECTOR_EVENTS)}, ARRAY({page})"


def stills(*, camera: bool, favorites: bool) -> str:
    filters = (" AND t.camera_id = $3" if camera else "") + (
        " AND t.is_favorite" if favorites else ""
    )
    return f"SELECT {_known(STILL_CANDIDATES)}, " + _json_array(
        f"SELECT {_ROW} FROM {_from(STILL_CANDIDATES)} WHERE t.session_id = $1"
        f"{filters} ORDER BY t.score DESC, t.timestamp_ms, t.position LIMIT $2"
    )


MUSIC: Final = f"SELECT {_known(MUSIC_MOMENTS)}, " + _json_array(
    f"SELECT {_ROW} FROM {_from(MUSIC_MOMENTS)} WHERE t.session_id = $1"
    " ORDER BY t.timestamp_ms, t.position LIMIT $2"
)


def assets(*, asset_type: bool) -> str:
    return f"SELECT {_known(ASSETS)}, " + _json_array(
        f"SELECT {_ROW} FROM {_from(ASSETS)} WHERE t.session_id = $1"
        + (" AND t.asset_type = $2" if asset_type else "")
        + " ORDER BY t.created_at, t.position"
    )


_EVENTS_PAGES: Final = {
    (t, c): events_page(event_type=t, camera=c) for t in (False, True) for c in (False, True)
}
_STILLS: Final = {
    (c, f): stills(camera=c, favorites=f) for c in (False, True) for f in (False, True)
}
_ASSETS: Final = {a: assets(asset_type=a) for a in (False, True)}


@dataclass(frozen=True, slots=True)
class Read:
    """One read's statement: what it found (JSON text; None: no such row), the position
    the answer reflects (the lowest checkpoint of the tables it read, in its snapshot),
    and whether the session exists in that snapshot."""

    position: int
    session_known: bool
    json: str | None


@dataclass(frozen=True, slots=True)
class EventsRead:
    position: int
    session_known: bool
    rows: list[tuple[int, int, str]]  # (timestampMs, position, row JSON)


class ReadStore:
    """The read tables, queried: rows come back as JSON text, built by Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @translating
    async def _read(self, sql: str, *args: object) -> Read:
        row = await self._pool.fetchrow(sql, *args)
        assert row is not None
        return Read(int(row[0] or 0), row[1] is not None, row[2])

    @translating
    async def _one(self, sql: str, *args: object) -> str | None:
        found = await self._pool.fetchval(sql, *args)
        return None if found is None else str(found)

    async def session(self, session_id: str) -> Read:
        return await self._read(SESSION, session_id)

    async def active(self, session_type: str | None) -> Read:
        if session_type is None:
            return await self._read(ACTIVE)
        return await self._read(ACTIVE_OF_TYPE, session_type)

    async def timeline(self, session_id: str, start: int, end: int, limit: int) -> Read:
        return await self._read(TIMELINE, session_id, start, end, limit)

    async def cameras(self, session_id: str) -> Read:
        return await self._read(CAMERAS_OF, session_id)

    async def camera(self, session_id: str, camera_id: str) -> str | None:
        return await self._one(CAMERA, f"{session_id}:{camera_id}")

    async def still(self, still_id: str) -> str | None:
        return await self._one(STILL, still_id)

    @translating
    async def events_page(
        self,
        session_id: str,
        after: tuple[int, int],
        limit: int,
        event_type: str | None,
        camera_id: str | None,
    ) -> EventsRead:
        """Director events after the keyset `after` = (timestampMs, position): (timestampMs,
        position, row JSON) each, at most `limit`."""
        sql = _EVENTS_PAGES[(event_type is not None, camera_id is not None)]
        filters = [f for f in (event_type, camera_id) if f is not None]
        row = await self._pool.fetchrow(sql, session_id, *after, limit, *filters)
        assert row is not None
        rows = [(r[0], r[1], r[2]) for r in row[2]]
        return EventsRead(int(row[0] or 0), row[1] is not None, rows)

    async def stills(
        self, session_id: str, limit: int, camera_id: str | None, favorites_only: bool
    ) -> Read:
        sql = _STILLS[(camera_id is not None, favorites_only)]
        args = (limit,) if camera_id is None else (limit, camera_id)
        return await self._read(sql, session_id, *args)

    async def music(self, session_id: str, limit: int) -> Read:
        return await self._read(MUSIC, session_id, limit)

    async def assets(self, session_id: str, asset_type: str | None) -> Read:
        if asset_type is None:
            return await self._read(_ASSETS[False], session_id)
        return await self._read(_ASSETS[True], session_id, asset_type)
