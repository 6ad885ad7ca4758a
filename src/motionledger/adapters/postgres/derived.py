"""The derived reads' SQL (the cut log's is in `cut_log`): index probes that hand the rules
of `domain.derived` the few rows that decide an answer, never a scan of a session.

- hero-windows: the markers chained to the first one that reaches fromMs, then markers in
  order; the stills of each window from one index range each.
- alignment: the items by index, each item's surroundings by a handful of probes.

An asOf read is the same computation restricted to the log positions logged by then;
`as_of_ctes` also bounds it in time so that no probe steps over what was logged later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from ...domain.derived import Marker, Moment, Surrounding

BLOCK_SHIFT: Final = 14  # director_events_session_block: blocks of 16384 positions
_DE: Final = "production.director_events"


def as_of_ctes(as_of: str) -> str:
    """CTEs for an asOf read (`as_of`: an SQL expression, epoch ms): `asof` (p, the log
    position it stands for) and `ceiling` (ts: the latest timestamp among the session's
    director events logged by then — no probe need step over what was logged after): the
    latest of each whole block of positions before p's (one probe each), and of the
    entries of p's block up to p."""
    p = "(SELECT p FROM asof)"
    block = f"(e.position >> {BLOCK_SHIFT})"
    last = f"({p} >> {BLOCK_SHIFT})"

    def latest(where: str) -> str:
        return (
            f"SELECT e.timestamp_ms FROM {_DE} e WHERE e.session_id = $1 AND {where}"
            " ORDER BY e.timestamp_ms DESC LIMIT 1"
        )

    return f"""
asof AS MATERIALIZED (SELECT ledger.position_at({as_of}) AS p),
blocks(b) AS (
    (SELECT {block} FROM {_DE} e WHERE e.session_id = $1 ORDER BY {block} LIMIT 1)
  UNION ALL
    SELECT (SELECT {block} FROM {_DE} e WHERE e.session_id = $1 AND {block} > k.b
             ORDER BY {block} LIMIT 1)
      FROM blocks k WHERE k.b < {last}
),
ceiling AS MATERIALIZED (
    SELECT coalesce(greatest(
               (SELECT max(({latest(f"{block} = k.b")})) FROM blocks k WHERE k.b < {last}),
               ({latest(f"{block} = {last} AND e.position <= {p}")})), -1) AS ts
)"""


def known_columns(tables: str) -> str:
    """SELECT-list columns: the lowest checkpoint of `tables` (an SQL text[]) and the
    session's position (null: unknown)."""
    return (
        "(SELECT min(position) FROM production.projection_state"
        f" WHERE projection = ANY({tables})) AS checkpoint,"
        " (SELECT position FROM production.sessions WHERE id = $1) AS session_position"
    )


CHECKPOINT: Final = f"SELECT {known_columns('$2::text[]')}"


async def checkpoint(
    conn: asyncpg.Connection, session_id: str, projections: Sequence[str]
) -> tuple[int, int | None]:
    """(the lowest checkpoint of `projections`, the session's position or None)."""
    row = await conn.fetchrow(CHECKPOINT, session_id, list(projections))
    assert row is not None
    return int(row["checkpoint"] or 0), row["session_position"]


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
def _times(event_type: str, where: str, order: str = "", limit: str = "") -> str:
    return (
        f"SELECT e.timestamp_ms AS ts FROM {_DE} e WHERE e.session_id = $1"
        f" AND e.event_type = '{event_type}' AND {where}{order}{limit}"
    )


_LATEST: Final = " ORDER BY e.timestamp_ms DESC LIMIT 1"
_EARLIEST: Final = " ORDER BY e.timestamp_ms LIMIT 1"
_ITEMS: Final = ("event_id", "event_type", "timestamp_ms", "camera_id")
# $1 session, $2..$3 the range (both inclusive), $4 limit, $5 the tables to check. The items,
# and all an item between the first and the last of them can be aligned to: the bar fires
# between them and the nearest outside, the phrase starts between them and the latest
# before, the phrase ends from that start on and the earliest after, the music moments
# between them and the latest before — the rule runs on these as the twin's does.
ALIGNMENT: Final = f"""
WITH items AS MATERIALIZED (
    SELECT e.event_id, e.event_type, e.timestamp_ms, e.camera_id, e.position FROM {_DE} e
     WHERE e.session_id = $1
       AND e.event_type IN ('cut', 'hero_pose_marker', 'still_candidate_marker')
       AND e.timestamp_ms BETWEEN $2 AND $3
     ORDER BY e.timestamp_ms, e.position LIMIT $4
),
span AS MATERIALIZED (SELECT min(timestamp_ms) AS lo, max(timestamp_ms) AS hi FROM items),
first_start AS MATERIALIZED (
    SELECT ({
    _times("music_phrase_start", "e.timestamp_ms <= (SELECT lo FROM span)") + _LATEST
}) AS ts
)
SELECT (SELECT min(position) FROM production.projection_state
         WHERE projection = ANY($5::text[])) AS checkpoint,
       (SELECT position FROM production.sessions WHERE id = $1) AS session_position,
       {
    ", ".join(
        f"(SELECT array_agg({c} ORDER BY timestamp_ms, position) FROM items) AS {c}" for c in _ITEMS
    )
},
       ARRAY(({_times("bar_fire", "e.timestamp_ms <= s.lo") + _LATEST})
             UNION ALL ({_times("bar_fire", "e.timestamp_ms > s.lo AND e.timestamp_ms < s.hi")})
             UNION ALL ({_times("bar_fire", "e.timestamp_ms >= s.hi") + _EARLIEST}))
         AS bars,
       ARRAY(SELECT ts FROM first_start WHERE ts IS NOT NULL
             UNION ALL ({
    _times("music_phrase_start", "e.timestamp_ms > s.lo AND e.timestamp_ms <= s.hi")
}))
         AS starts,
       ARRAY(({
    _times("music_phrase_end", "e.timestamp_ms >= coalesce(f.ts, s.lo) AND e.timestamp_ms <= s.hi")
})
             UNION ALL ({_times("music_phrase_end", "e.timestamp_ms >= s.hi") + _EARLIEST}))
         AS ends,
       ARRAY(SELECT ROW(m.timestamp_ms, m.position, m.section, m.tempo) FROM (
               (SELECT x.timestamp_ms, x.position, x.section, x.tempo
                  FROM production.music_moments x
                 WHERE x.session_id = $1 AND x.timestamp_ms < s.lo
                 ORDER BY x.timestamp_ms DESC, x.position DESC LIMIT 1)
             UNION ALL
               (SELECT x.timestamp_ms, x.position, x.section, x.tempo
                  FROM production.music_moments x
                 WHERE x.session_id = $1 AND x.timestamp_ms BETWEEN s.lo AND s.hi)) m)
         AS moments
  FROM span s, first_start f
"""


@dataclass(frozen=True, slots=True)
class Items:
    """The items of an alignment and what they can be aligned to (see ALIGNMENT)."""

    checkpoint: int
    session_position: int | None
    items: list[tuple[str, str, int, str | None]]  # eventId, eventType, timestampMs, cameraId
    around: Surrounding


async def alignment_items(
    conn: asyncpg.Connection,
    session_id: str,
    window: tuple[int, int],
    limit: int,
    tables: list[str],
) -> Items:
    row = await conn.fetchrow(ALIGNMENT, session_id, *window, limit, tables)
    assert row is not None
    columns = [row[c] or [] for c in _ITEMS]
    moments = [Moment(*m) for m in row["moments"]]
    return Items(
        int(row["checkpoint"] or 0),
        row["session_position"],
        list(zip(*columns, strict=True)),
        Surrounding(row["bars"], row["starts"], row["ends"], moments),
    )
