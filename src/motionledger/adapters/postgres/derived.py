"""The derived reads' SQL: index probes and walks that hand the rules of `domain.derived` the
few events that decide an answer, never a scan of a session.

- cut-log: `START` finds a point before the segment on air at fromMs began and the shot on
  air just after it; `WALK` then hands over, from a point, only the events that change the
  shot — the camera walk steps from cut to the next cut naming another camera (the next 16
  cuts, else one probe per camera), the held walk from hold to the next release and back —
  so a camera held on air through a million frame-rate cuts costs a few probes, not a scan.
- hero-windows: the markers chained to the first one that reaches fromMs, then markers in
  order; the stills of each window from one index range each.
- alignment: the items by index, each item's surroundings by a handful of probes.

Every statement takes a highest log position ($max_position) so that an asOf answer is the
same computation restricted to the log as it was; `ts_ceiling` bounds it in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from ...domain.derived import Marker, Shot, Surroundings, Switch

MAX_POSITION: Final = (1 << 63) - 1
BLOCK_SHIFT: Final = 15  # director_events_session_block: blocks of 32768 positions
_DE: Final = "production.director_events"
_CUT: Final = "e.session_id = $1 AND e.event_type = 'cut' AND e.camera_id IS NOT NULL"

CHECKPOINT: Final = """
SELECT (SELECT min(position) FROM production.projection_state
         WHERE projection = ANY($2::text[])) AS checkpoint,
       (SELECT position FROM production.sessions WHERE id = $1) AS session_position
"""

# The latest timestamp among the session's director events logged at or before $2, rounded
# up to a whole block of positions: every event logged by then has a timestamp at or below.
TIME_CEILING: Final = f"""
WITH RECURSIVE blocks(b) AS (
    (SELECT e.position >> {BLOCK_SHIFT} FROM {_DE} e WHERE e.session_id = $1
      ORDER BY e.position >> {BLOCK_SHIFT} LIMIT 1)
  UNION ALL
    SELECT (SELECT e.position >> {BLOCK_SHIFT} FROM {_DE} e
             WHERE e.session_id = $1 AND (e.position >> {BLOCK_SHIFT}) > k.b
             ORDER BY e.position >> {BLOCK_SHIFT} LIMIT 1)
      FROM blocks k WHERE k.b <= ($2::bigint >> {BLOCK_SHIFT})
)
SELECT coalesce(max((SELECT e.timestamp_ms FROM {_DE} e
                      WHERE e.session_id = $1 AND (e.position >> {BLOCK_SHIFT}) = k.b
                      ORDER BY e.timestamp_ms DESC LIMIT 1)), -1)
  FROM blocks k WHERE k.b <= ($2::bigint >> {BLOCK_SHIFT})
"""


def _latest(where: str, *, before: str) -> str:
    """The latest (timestampMs, position) of the director events matching `where` before
    the bound `before` (a condition on e), as columns ts, pos."""
    return (
        f"SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e"
        f" WHERE {where} AND {before} AND e.position <= $3"
        " ORDER BY e.timestamp_ms DESC, e.position DESC LIMIT 1"
    )


_ON_CAMERA: Final = f"{_CUT} AND e.camera_id = c.cam"
_OF_KIND: Final = "e.session_id = $1 AND e.event_type = k.kind"
_OTHER: Final = "CASE WHEN (SELECT held FROM held_now) THEN 'release' ELSE 'hold' END"
_SAME: Final = "CASE WHEN (SELECT held FROM held_now) THEN 'hold' ELSE 'release' END"
_OTHER_KIND: Final = f"e.session_id = $1 AND e.event_type = {_OTHER}"

# $1 session, $2 fromMs, $3 highest position. The run of the camera on air at fromMs began
# after the latest cut to another camera that is the last cut of its timestamp; same for
# held. Starting just after the later of the two, with the shot on air there, the builder
# sees the segment on air at fromMs begin. (A cut to another camera overridden within its
# own timestamp changes nothing: look further back.)
START: Final = f"""
WITH RECURSIVE
cams(cam) AS (
    (SELECT e.camera_id FROM {_DE} e WHERE {_CUT} ORDER BY e.camera_id LIMIT 1)
  UNION ALL
    SELECT (SELECT e.camera_id FROM {_DE} e WHERE {_CUT} AND e.camera_id > c.cam
             ORDER BY e.camera_id LIMIT 1)
      FROM cams c WHERE c.cam IS NOT NULL
),
cameras AS MATERIALIZED (SELECT cam FROM cams WHERE cam IS NOT NULL),
latest AS MATERIALIZED (
    SELECT c.cam, l.ts, l.pos FROM cameras c
     CROSS JOIN LATERAL ({_latest(_ON_CAMERA, before="e.timestamp_ms <= $2")}) l
),
on_air AS MATERIALIZED (SELECT cam FROM latest ORDER BY ts DESC, pos DESC LIMIT 1),
camera_back(depth, ts, pos, overridden) AS (
    SELECT 0, y.ts, y.pos, EXISTS (
               SELECT 1 FROM {_DE} e WHERE {_CUT} AND e.camera_id = (SELECT cam FROM on_air)
                  AND e.timestamp_ms = y.ts AND e.position > y.pos AND e.position <= $3)
      FROM (SELECT ts, pos FROM latest WHERE cam <> (SELECT cam FROM on_air)
             ORDER BY ts DESC, pos DESC LIMIT 1) y
  UNION ALL
    SELECT b.depth + 1, y.ts, y.pos, EXISTS (
               SELECT 1 FROM {_DE} e WHERE {_CUT} AND e.camera_id = (SELECT cam FROM on_air)
                  AND e.timestamp_ms = y.ts AND e.position > y.pos AND e.position <= $3)
      FROM camera_back b CROSS JOIN LATERAL (
            SELECT l.ts, l.pos FROM cameras c
             CROSS JOIN LATERAL ({_latest(_ON_CAMERA, before="e.timestamp_ms < b.ts")}) l
             WHERE c.cam <> (SELECT cam FROM on_air)
             ORDER BY l.ts DESC, l.pos DESC LIMIT 1) y
     WHERE b.overridden
),
kinds AS MATERIALIZED (
    SELECT k.kind, l.ts, l.pos FROM (VALUES ('hold'), ('release')) k(kind)
     CROSS JOIN LATERAL ({_latest(_OF_KIND, before="e.timestamp_ms <= $2")}) l
),
held_now AS MATERIALIZED (
    SELECT coalesce((SELECT kind = 'hold' FROM kinds ORDER BY ts DESC, pos DESC LIMIT 1), false)
           AS held
),
held_back(depth, ts, pos, overridden) AS (
    SELECT 0, z.ts, z.pos, EXISTS (
               SELECT 1 FROM {_DE} e WHERE e.session_id = $1 AND e.event_type = {_SAME}
                  AND e.timestamp_ms = z.ts AND e.position > z.pos AND e.position <= $3)
      FROM kinds z WHERE z.kind = {_OTHER}
  UNION ALL
    SELECT b.depth + 1, z.ts, z.pos, EXISTS (
               SELECT 1 FROM {_DE} e WHERE e.session_id = $1 AND e.event_type = {_SAME}
                  AND e.timestamp_ms = z.ts AND e.position > z.pos AND e.position <= $3)
      FROM held_back b CROSS JOIN LATERAL (
            {_latest(_OTHER_KIND, before="e.timestamp_ms < b.ts")}
           ) z
     WHERE b.overridden
),
points AS (
    (SELECT CASE WHEN overridden THEN -1 ELSE ts END AS ts,
            CASE WHEN overridden THEN 0 ELSE pos END AS pos
       FROM camera_back ORDER BY depth DESC LIMIT 1)
  UNION ALL
    (SELECT CASE WHEN overridden THEN -1 ELSE ts END, CASE WHEN overridden THEN 0 ELSE pos END
       FROM held_back ORDER BY depth DESC LIMIT 1)
  UNION ALL
    SELECT -1, 0
),
start AS MATERIALIZED (SELECT ts, pos FROM points ORDER BY ts DESC, pos DESC LIMIT 1)
SELECT (SELECT coalesce(array_agg(cam), '{{}}') FROM cameras) AS cameras, s.ts, s.pos,
       (SELECT c.cam FROM cameras c CROSS JOIN LATERAL (
                 {_latest(_ON_CAMERA, before="(e.timestamp_ms, e.position) <= (s.ts, s.pos)")}
               ) l
         ORDER BY l.ts DESC, l.pos DESC LIMIT 1) AS camera,
       coalesce((SELECT k.kind = 'hold' FROM (VALUES ('hold'), ('release')) k(kind)
                  CROSS JOIN LATERAL (
                        {_latest(_OF_KIND, before="(e.timestamp_ms, e.position) <= (s.ts, s.pos)")}
                       ) l
                  ORDER BY l.ts DESC, l.pos DESC LIMIT 1), false) AS held
  FROM start s
"""

_AFTER: Final = (
    "(e.timestamp_ms, e.position) > (w.ts, w.pos) AND e.timestamp_ms <= $7 AND e.position <= $8"
)
# $1 session, ($2, $3) the point after which to walk, $4 camera and $5 held on air there,
# $6 steps at most per walk, $7 no timestamp above, $8 highest position, $9 the cameras.
# Answers every shot-changing event up to `complete_to` (both walks' candidates before it,
# and every switch at it), and whether a walk ran out of steps (`truncated`).
WALK: Final = f"""
WITH RECURSIVE
cameras AS MATERIALIZED (SELECT unnest($9::text[]) AS cam),
camera_walk(n, ts, pos, cam) AS (
    SELECT 0, $2::bigint, $3::bigint, $4::text
  UNION ALL
    SELECT w.n + 1, x.ts, x.pos, x.cam FROM camera_walk w CROSS JOIN LATERAL (
        (SELECT d.ts, d.pos, d.cam FROM (
                SELECT e.timestamp_ms AS ts, e.position AS pos, e.camera_id AS cam
                  FROM {_DE} e WHERE {_CUT} AND {_AFTER}
                 ORDER BY e.timestamp_ms, e.position LIMIT 16) d
          WHERE d.cam IS DISTINCT FROM w.cam ORDER BY d.ts, d.pos LIMIT 1)
      UNION ALL
        (SELECT j.ts, j.pos, c.cam FROM cameras c CROSS JOIN LATERAL (
                SELECT e.timestamp_ms AS ts, e.position AS pos
                  FROM {_DE} e WHERE {_ON_CAMERA} AND {_AFTER}
                 ORDER BY e.timestamp_ms, e.position LIMIT 1) j
          WHERE c.cam IS DISTINCT FROM w.cam ORDER BY j.ts, j.pos LIMIT 1)
        LIMIT 1
    ) x
    WHERE w.n < $6
),
held_walk(n, ts, pos, held) AS (
    SELECT 0, $2::bigint, $3::bigint, $5::boolean
  UNION ALL
    SELECT w.n + 1, x.ts, x.pos, NOT w.held FROM held_walk w CROSS JOIN LATERAL (
        SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e
         WHERE e.session_id = $1
           AND e.event_type = (CASE WHEN w.held THEN 'release' ELSE 'hold' END) AND {_AFTER}
         ORDER BY e.timestamp_ms, e.position LIMIT 1
    ) x
    WHERE w.n < $6
),
cw AS (SELECT ts, pos, n FROM camera_walk WHERE n > 0),
hw AS (SELECT ts, pos, n FROM held_walk WHERE n > 0),
horizon AS MATERIALIZED (
    SELECT least(CASE WHEN (SELECT max(n) FROM cw) >= $6 THEN (SELECT max(ts) FROM cw) END,
                 CASE WHEN (SELECT max(n) FROM hw) >= $6 THEN (SELECT max(ts) FROM hw) END,
                 $7::bigint) AS t,
           coalesce((SELECT max(n) FROM cw) >= $6, false)
             OR coalesce((SELECT max(n) FROM hw) >= $6, false) AS truncated
),
picked AS (
    SELECT ts, pos FROM cw WHERE ts < (SELECT t FROM horizon)
  UNION ALL
    SELECT ts, pos FROM hw WHERE ts < (SELECT t FROM horizon)
),
found AS (
    SELECT e.timestamp_ms, e.position, e.event_type, e.camera_id, e.event_id
      FROM picked p CROSS JOIN LATERAL (
            SELECT * FROM {_DE} e
             WHERE e.session_id = $1 AND e.timestamp_ms = p.ts AND e.position = p.pos) e
  UNION ALL
    SELECT e.timestamp_ms, e.position, e.event_type, e.camera_id, e.event_id FROM {_DE} e
     WHERE e.session_id = $1 AND e.timestamp_ms = (SELECT t FROM horizon)
       AND (e.timestamp_ms, e.position) > ($2::bigint, $3::bigint) AND e.position <= $8
       AND e.event_type IN ('cut', 'hold', 'release')
)
SELECT h.t AS complete_to, h.truncated,
       array_agg(f.timestamp_ms ORDER BY f.timestamp_ms, f.position)
         FILTER (WHERE f.position IS NOT NULL) AS ts,
       array_agg(f.position ORDER BY f.timestamp_ms, f.position)
         FILTER (WHERE f.position IS NOT NULL) AS pos,
       array_agg(f.event_type ORDER BY f.timestamp_ms, f.position)
         FILTER (WHERE f.position IS NOT NULL) AS types,
       array_agg(f.camera_id ORDER BY f.timestamp_ms, f.position)
         FILTER (WHERE f.position IS NOT NULL) AS cams,
       array_agg(f.event_id ORDER BY f.timestamp_ms, f.position)
         FILTER (WHERE f.position IS NOT NULL) AS ids
  FROM horizon h LEFT JOIN found f ON true
 GROUP BY h.t, h.truncated
"""


@dataclass(frozen=True, slots=True)
class Start:
    cameras: list[str]  # every camera the session's cuts name (whatever their position)
    timestamp_ms: int
    position: int
    shot: Shot


@dataclass(frozen=True, slots=True)
class Page:
    switches: list[Switch]
    complete_to: int  # every shot-changing event at or before this timestamp is in
    truncated: bool  # a walk ran out of steps (else: all of them up to the asked bound)


async def checkpoint(
    conn: asyncpg.Connection, session_id: str, projections: Sequence[str]
) -> tuple[int, int | None]:
    """(the lowest checkpoint of `projections`, the session's position or None)."""
    row = await conn.fetchrow(CHECKPOINT, session_id, list(projections))
    assert row is not None
    return int(row["checkpoint"] or 0), row["session_position"]


async def time_ceiling(conn: asyncpg.Connection, session_id: str, max_position: int) -> int:
    """A timestamp no director event of the session logged by `max_position` exceeds."""
    return int(await conn.fetchval(TIME_CEILING, session_id, max_position))


async def cut_log_start(
    conn: asyncpg.Connection, session_id: str, from_ms: int, max_position: int
) -> Start:
    row = await conn.fetchrow(START, session_id, from_ms, max_position)
    assert row is not None
    return Start(list(row["cameras"]), row["ts"], row["pos"], Shot(row["camera"], row["held"]))


async def cut_log_walk(
    conn: asyncpg.Connection,
    session_id: str,
    start: Start,
    after: tuple[int, int],
    shot: Shot,
    steps: int,
    ts_max: int,
    max_position: int,
) -> Page:
    row = await conn.fetchrow(
        WALK,
        session_id,
        after[0],
        after[1],
        shot.camera_id,
        shot.held,
        steps,
        ts_max,
        max_position,
        start.cameras,
    )
    assert row is not None
    columns = [row[name] or [] for name in ("ts", "pos", "types", "cams", "ids")]
    return Page([Switch(*values) for values in zip(*columns, strict=True)], row[0], row[1])


# -- hero-windows ----------------------------------------------------------------------------
_MARKER: Final = "e.session_id = $1 AND e.event_type = 'hero_pose_marker'"
# $1 session, $2 the earliest timestamp a marker may have to reach the range, $3 padMs:
# the first such marker, walked back through the markers chained to it.
MARKER_CHAIN_START: Final = f"""
WITH RECURSIVE back(ts, pos) AS (
    (SELECT e.timestamp_ms, e.position FROM {_DE} e WHERE {_MARKER} AND e.timestamp_ms >= $2
      ORDER BY e.timestamp_ms, e.position LIMIT 1)
  UNION ALL
    SELECT p.ts, p.pos FROM back b CROSS JOIN LATERAL (
        SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e
         WHERE {_MARKER} AND (e.timestamp_ms, e.position) < (b.ts, b.pos)
         ORDER BY e.timestamp_ms DESC, e.position DESC LIMIT 1) p
     WHERE b.ts - $3 <= p.ts + $3
)
SELECT ts, pos FROM back ORDER BY ts, pos LIMIT 1
"""
MARKERS_FROM: Final = f"""
SELECT e.timestamp_ms, e.position, e.event_id, e.camera_id FROM {_DE} e
 WHERE {_MARKER} AND (e.timestamp_ms, e.position) >= ($2::bigint, $3::bigint)
 ORDER BY e.timestamp_ms, e.position LIMIT $4
"""
STILLS_IN: Final = """
SELECT coalesce(s.ids, '{}') AS ids
  FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS w(low, high, i)
 CROSS JOIN LATERAL (
        SELECT array_agg(x.still_candidate_id ORDER BY x.score DESC, x.timestamp_ms, x.position)
               AS ids
          FROM production.still_candidates x
         WHERE x.session_id = $1 AND x.timestamp_ms BETWEEN w.low AND w.high) s
 ORDER BY w.i
"""


async def marker_chain_start(
    conn: asyncpg.Connection, session_id: str, reach_ms: int, pad_ms: int
) -> tuple[int, int] | None:
    row = await conn.fetchrow(MARKER_CHAIN_START, session_id, reach_ms, pad_ms)
    return None if row is None else (row["ts"], row["pos"])


async def markers_from(
    conn: asyncpg.Connection, session_id: str, start: tuple[int, int], count: int
) -> list[Marker]:
    rows = await conn.fetch(MARKERS_FROM, session_id, start[0], start[1], count)
    return [Marker(*row) for row in rows]


async def stills_in(
    conn: asyncpg.Connection, session_id: str, bounds: Sequence[tuple[int, int]]
) -> list[list[str]]:
    rows = await conn.fetch(
        STILLS_IN, session_id, [low for low, _ in bounds], [high for _, high in bounds]
    )
    return [list(row["ids"]) for row in rows]


# -- alignment --------------------------------------------------------------------------------
def _nearest(event_type: str, relation: str, direction: str, at: str = "i.timestamp_ms") -> str:
    return (
        f"SELECT e.timestamp_ms FROM {_DE} e WHERE e.session_id = $1"
        f" AND e.event_type = '{event_type}' AND e.timestamp_ms {relation} {at}"
        f" ORDER BY e.timestamp_ms {direction} LIMIT 1"
    )


# $1 session, $2..$3 the range (both inclusive), $4 limit
ALIGNMENT: Final = f"""
SELECT i.event_id, i.event_type, i.timestamp_ms, i.camera_id,
       ({_nearest("bar_fire", "<=", "DESC")}) AS bar_before,
       ({_nearest("bar_fire", ">=", "ASC")}) AS bar_after,
       ps.ts AS phrase_start,
       ({_nearest("music_phrase_end", ">=", "ASC", at="ps.ts")}) AS phrase_end,
       m.section, m.tempo
  FROM (SELECT e.event_id, e.event_type, e.timestamp_ms, e.camera_id, e.position FROM {_DE} e
         WHERE e.session_id = $1
           AND e.event_type IN ('cut', 'hero_pose_marker', 'still_candidate_marker')
           AND e.timestamp_ms BETWEEN $2 AND $3
         ORDER BY e.timestamp_ms, e.position LIMIT $4) i
  LEFT JOIN LATERAL ({_nearest("music_phrase_start", "<=", "DESC")}) ps(ts) ON true
  LEFT JOIN LATERAL (
        SELECT x.section, x.tempo FROM production.music_moments x
         WHERE x.session_id = $1 AND x.timestamp_ms <= i.timestamp_ms
         ORDER BY x.timestamp_ms DESC, x.position DESC LIMIT 1) m ON true
 ORDER BY i.timestamp_ms, i.position
"""


@dataclass(frozen=True, slots=True)
class Item:
    event_id: str
    event_type: str
    timestamp_ms: int
    camera_id: str | None
    around: Surroundings


async def alignment_items(
    conn: asyncpg.Connection, session_id: str, from_ms: int, to_ms: int, limit: int
) -> list[Item]:
    rows = await conn.fetch(ALIGNMENT, session_id, from_ms, to_ms, limit)
    return [
        Item(
            r["event_id"],
            r["event_type"],
            r["timestamp_ms"],
            r["camera_id"],
            Surroundings(
                r["bar_before"],
                r["bar_after"],
                r["phrase_start"],
                r["phrase_end"],
                r["section"],
                r["tempo"],
            ),
        )
        for r in rows
    ]
