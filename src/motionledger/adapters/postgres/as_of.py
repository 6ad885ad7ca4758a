"""The timeline as the ledger held it at an earlier position: the read tables' rows logged
by then, and the log's events of the rows that changed since (to fold again)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from ...domain.projections import (
    ASSETS,
    CAMERAS,
    DIRECTOR_EVENTS,
    MUSIC_MOMENTS,
    SESSIONS,
    STILL_CANDIDATES,
)
from .derived import as_of_ctes, known_columns
from .reads import _C, _ROW, _from, _join, _latest_in_window

_P: Final = "(SELECT p FROM asof)"
_LOGGED: Final = f" AND t.position <= {_P}"
# $1 session, $2..$3 the window, $4 limit, $5 asOf (epoch ms), $6 the tables to check. Rows
# logged by the position asOf stands for; director events no later than the latest logged
# by then; a row patched after asOf (updated_at later) comes back as changed.
_NO_LATER: Final = f"{_LOGGED} AND t.timestamp_ms <= (SELECT ts FROM ceiling)"
TIMELINE: Final = f"""
WITH RECURSIVE {as_of_ctes("$5")},
stills AS MATERIALIZED (
    SELECT {_ROW} AS j, t.id, t.updated_at > $5 AS changed, t.timestamp_ms AS ts,
           t.position AS pos
      FROM {_from(STILL_CANDIDATES)}
     WHERE t.session_id = $1 AND t.timestamp_ms BETWEEN $2 AND $3{_LOGGED}
     ORDER BY t.timestamp_ms DESC, t.position DESC LIMIT $4
)
SELECT {_P} AS position, {known_columns("$6::text[]")},
       (SELECT s.updated_at > $5 FROM production.sessions s WHERE s.id = $1) AS session_changed,
       (SELECT coalesce(bool_or(c.updated_at > $5), false) FROM production.cameras c
         WHERE c.session_id = $1 AND c.position <= {_P}) AS cameras_changed,
       (SELECT {_ROW} FROM {_from(SESSIONS)} WHERE t.id = $1) AS session,
       (SELECT {_join(f"x.camera_id {_C}")} FROM (
               SELECT {_ROW} AS j, t.camera_id FROM {_from(CAMERAS)}
                WHERE t.session_id = $1{_LOGGED}) x) AS cameras,
       {_latest_in_window(DIRECTOR_EVENTS, _NO_LATER)} AS director_events,
       (SELECT coalesce(array_agg(j ORDER BY ts, pos), '{{}}') FROM stills) AS stills,
       (SELECT coalesce(array_agg(id ORDER BY ts, pos), '{{}}') FROM stills) AS still_ids,
       (SELECT coalesce(array_agg(id ORDER BY ts, pos) FILTER (WHERE changed), '{{}}')
          FROM stills) AS stills_changed,
       {_latest_in_window(MUSIC_MOMENTS, _LOGGED)} AS music_moments,
       (SELECT {_join("x.at, x.pos")} FROM (
               SELECT {_ROW} AS j, t.created_at AS at, t.position AS pos FROM {_from(ASSETS)}
                WHERE t.session_id = $1 AND t.created_at <= $5{_LOGGED}
                ORDER BY t.created_at DESC, t.position DESC LIMIT $4) x) AS assets
"""

# the events that made and patched a session and its cameras, and some stills, by then
SESSION_AND_CAMERAS: Final = """
SELECT position, recorded_at, body FROM ledger.events
 WHERE session_id = $1 AND lane IN ('session', 'camera') AND position <= $2
 ORDER BY position
"""
STILLS: Final = """
SELECT position, recorded_at, body FROM ledger.events
 WHERE entity_id = ANY($1::text[]) AND lane = 'still' AND position <= $2
 ORDER BY position
"""


@dataclass(frozen=True, slots=True)
class Rows:
    position: int  # the log position asOf stands for
    checkpoint: int
    session_position: int | None
    session: str | None
    session_changed: bool
    cameras: str  # a JSON array
    cameras_changed: bool
    director_events: str
    stills: list[str]  # JSON rows in ascending order
    still_ids: list[str]  # their ids
    stills_changed: list[str]  # ids among them patched after asOf
    music_moments: str
    assets: str


async def timeline_rows(
    conn: asyncpg.Connection,
    session_id: str,
    window: tuple[int, int],
    limit: int,
    as_of: int,
    tables: list[str],
) -> Rows:
    row = await conn.fetchrow(TIMELINE, session_id, *window, limit, as_of, tables)
    assert row is not None
    return Rows(
        row["position"],
        int(row["checkpoint"] or 0),
        row["session_position"],
        row["session"],
        bool(row["session_changed"]),
        row["cameras"],
        bool(row["cameras_changed"]),
        row["director_events"],
        list(row["stills"]),
        list(row["still_ids"]),
        list(row["stills_changed"]),
        row["music_moments"],
        row["assets"],
    )


async def session_events(
    conn: asyncpg.Connection, session_id: str, position: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SESSION_AND_CAMERAS, session_id, position))


async def still_events(
    conn: asyncpg.Connection, still_ids: Sequence[str], position: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(STILLS, list(still_ids), position))
