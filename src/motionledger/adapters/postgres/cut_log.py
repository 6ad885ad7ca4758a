"""The cut log's SQL: index probes that find where the segment on air at fromMs began, and
walks that hand `domain.derived.CutLogBuilder` only the events that change the shot.

- start: the run of the camera on air at fromMs began after the latest cut to another
  camera that is the last cut of its own timestamp (one probe per camera; a cut overridden
  within its timestamp changes nothing, so look further back); the held run likewise after
  the latest hold/release of the other kind. Just after the later of the two points, with
  the shot on air there, the builder sees the segment on air at fromMs begin.
- walk: the camera walk steps from a cut to the next cut naming another camera: it carries
  each camera's next cut along (one probe per camera at the start), so a step probes only
  for the camera it leaves; the held walk steps from a hold to the next release and back.
  A camera held on air through a million frame-rate cuts costs a few probes, not a scan.
  A page hands over every shot-changing event up to `complete_to`: both walks' events
  before it, and every cut, hold and release at it.

`FIRST` is the whole of a usual window in one statement (its own snapshot): the checkpoint,
the start, and a page that walks the window and `beyond` shot changes past it (`FIRST_AS_OF`
the same restricted to the log as it was then). `START` and `PAGE` continue in a snapshot
when that was not enough. Every probe takes a highest log position and timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import asyncpg

from ...domain.derived import Shot, Switch
from ...domain.events import MAX_EPOCH_MS
from .derived import as_of_ctes, known_columns

MAX_POSITION: Final = (1 << 63) - 1
BATCH: Final = 32  # cuts a camera step looks at, in a fast edit, before it jumps
FAST_EDIT_MS: Final = 1000  # a camera on air for less than this: look at a batch next
_DE: Final = "production.director_events"
_CUT: Final = "e.session_id = $1 AND e.event_type = 'cut' AND e.camera_id IS NOT NULL"
_ON_CAMERA: Final = f"{_CUT} AND e.camera_id = c.cam"
_OF_KIND: Final = "e.session_id = $1 AND e.event_type = k.kind"
_OTHER: Final = "CASE WHEN (SELECT held FROM held_now) THEN 'release' ELSE 'hold' END"
_SAME: Final = "CASE WHEN (SELECT held FROM held_now) THEN 'hold' ELSE 'release' END"
_OTHER_KIND: Final = f"e.session_id = $1 AND e.event_type = {_OTHER}"


def _latest(where: str, before: str, max_position: str) -> str:
    """The latest (timestampMs, position) of the director events matching `where` and
    `before` (conditions on e), as columns ts, pos."""
    return (
        f"SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e"
        f" WHERE {where} AND {before} AND e.position <= {max_position}"
        " ORDER BY e.timestamp_ms DESC, e.position DESC LIMIT 1"
    )


def _start(from_ms: str, max_position: str) -> str:
    """CTEs `cameras` (every camera the session's cuts name) and `origin` (ts, pos, camera,
    held): the point to walk from and the shot on air just after it."""
    p = max_position

    def overridden(camera: str, alias: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {_DE} e WHERE {_CUT} AND e.camera_id = {camera}"
            f" AND e.timestamp_ms = {alias}.ts AND e.position > {alias}.pos AND e.position <= {p})"
        )

    def overridden_kind(alias: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {_DE} e WHERE e.session_id = $1 AND e.event_type = {_SAME}"
            f" AND e.timestamp_ms = {alias}.ts AND e.position > {alias}.pos AND e.position <= {p})"
        )

    def last_row(cte: str) -> str:
        return (
            "SELECT CASE WHEN overridden THEN -1 ELSE ts END,"
            f" CASE WHEN overridden THEN 0 ELSE pos END FROM {cte} ORDER BY depth DESC LIMIT 1"
        )

    on_air = "(SELECT cam FROM on_air)"
    at_start = "(e.timestamp_ms, e.position) <= (s.ts, s.pos)"
    return f"""
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
     CROSS JOIN LATERAL ({_latest(_ON_CAMERA, f"e.timestamp_ms <= {from_ms}", p)}) l
),
on_air AS MATERIALIZED (SELECT cam FROM latest ORDER BY ts DESC, pos DESC LIMIT 1),
camera_back(depth, ts, pos, overridden) AS (
    SELECT 0, y.ts, y.pos, {overridden(on_air, "y")}
      FROM (SELECT ts, pos FROM latest WHERE cam <> {on_air}
             ORDER BY ts DESC, pos DESC LIMIT 1) y
  UNION ALL
    SELECT b.depth + 1, y.ts, y.pos, {overridden(on_air, "y")}
      FROM camera_back b CROSS JOIN LATERAL (
            SELECT l.ts, l.pos FROM cameras c
             CROSS JOIN LATERAL ({_latest(_ON_CAMERA, "e.timestamp_ms < b.ts", p)}) l
             WHERE c.cam <> {on_air}
             ORDER BY l.ts DESC, l.pos DESC LIMIT 1) y
     WHERE b.overridden
),
kinds AS MATERIALIZED (
    SELECT k.kind, l.ts, l.pos FROM (VALUES ('hold'), ('release')) k(kind)
     CROSS JOIN LATERAL ({_latest(_OF_KIND, f"e.timestamp_ms <= {from_ms}", p)}) l
),
held_now AS MATERIALIZED (
    SELECT coalesce((SELECT kind = 'hold' FROM kinds ORDER BY ts DESC, pos DESC LIMIT 1), false)
           AS held
),
held_back(depth, ts, pos, overridden) AS (
    SELECT 0, z.ts, z.pos, {overridden_kind("z")} FROM kinds z WHERE z.kind = {_OTHER}
  UNION ALL
    SELECT b.depth + 1, z.ts, z.pos, {overridden_kind("z")}
      FROM held_back b
     CROSS JOIN LATERAL ({_latest(_OTHER_KIND, "e.timestamp_ms < b.ts", p)}) z
     WHERE b.overridden
),
points(ts, pos) AS (
    ({last_row("camera_back")}) UNION ALL ({last_row("held_back")}) UNION ALL SELECT -1, 0
),
start AS MATERIALIZED (SELECT ts, pos FROM points ORDER BY ts DESC, pos DESC LIMIT 1),
origin AS MATERIALIZED (
    SELECT s.ts, s.pos,
           (SELECT c.cam FROM cameras c
             CROSS JOIN LATERAL ({_latest(_ON_CAMERA, at_start, p)}) l
             ORDER BY l.ts DESC, l.pos DESC LIMIT 1) AS camera,
           coalesce((SELECT k.kind = 'hold' FROM (VALUES ('hold'), ('release')) k(kind)
                      CROSS JOIN LATERAL ({_latest(_OF_KIND, at_start, p)}) l
                      ORDER BY l.ts DESC, l.pos DESC LIMIT 1), false) AS held
      FROM start s
)"""


@dataclass(frozen=True, slots=True)
class Bounds:
    """SQL expressions bounding a walk: at most `steps` shot changes per walk, none past
    `ts_max` or logged after `max_position`, and at most `beyond` past `soft`."""

    steps: str
    ts_max: str
    max_position: str
    soft: str
    beyond: str


def _first_cut(camera: str, point: str, bound: str) -> str:
    """The first cut to `camera` after `point` (a relation with ts, pos), within `bound`."""
    return (
        f"SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e"
        f" WHERE {_CUT} AND e.camera_id = {camera}"
        f" AND (e.timestamp_ms, e.position) > ({point}.ts, {point}.pos) AND {bound}"
        " ORDER BY e.timestamp_ms, e.position LIMIT 1"
    )


def _walk(origin: str, cameras: str, b: Bounds) -> str:
    """CTEs walking from `origin` (a relation of ts, pos, camera, held) and the final SELECT
    of a page: complete_to, truncated, and the events as arrays in (ts, pos) order.

    A camera step jumps to the earliest next cut of another camera: each camera's next cut
    is carried along and probed again only once the walk has passed it, so a jump costs
    about one probe, however long the camera before it was on air. In a fast edit (a camera
    on air for less than FAST_EDIT_MS) the next step looks at the next BATCH cuts instead
    and hands over every change among them (one index range for many changes); a batch
    without one falls back to the jump. Either way only speed depends on the choice."""
    bound = f"e.timestamp_ms <= {b.ts_max} AND e.position <= {b.max_position}"
    after = f"(e.timestamp_ms, e.position) > (w.ts, w.pos) AND {bound}"
    more = f"w.n < {b.steps} AND w.beyond < {b.beyond}"
    cams = "(SELECT cams FROM listed)"

    def past(ts: str) -> str:
        return f"(CASE WHEN {ts} > {b.soft} THEN 1 ELSE 0 END)"

    def array(column: str) -> str:
        return (
            f"array_agg(f.{column} ORDER BY f.timestamp_ms, f.position)"
            " FILTER (WHERE f.position IS NOT NULL)"
        )

    def truncated(cte: str) -> str:
        return (
            f"coalesce((SELECT max(n) >= {b.steps} OR max(beyond) >= {b.beyond} FROM {cte}), false)"
        )

    def last(cte: str) -> str:
        return f"CASE WHEN {truncated(cte)} THEN (SELECT max(ts) FROM {cte}) END"

    stale = "(u.ts IS NOT NULL AND (u.ts, u.pos) <= (w.ts, w.pos) AND u.cam IS DISTINCT FROM w.cam)"
    return f"""
listed AS MATERIALIZED (SELECT coalesce(array_agg(cam), '{{}}') AS cams FROM {cameras}),
camera_walk(n, beyond, ts, pos, cam, next_ts, next_pos, out_ts, out_pos, fast) AS (
    SELECT 0::bigint, 0::bigint, o.ts, o.pos, o.camera, a.next_ts, a.next_pos,
           '{{}}'::bigint[], '{{}}'::bigint[], false
      FROM {origin} o CROSS JOIN LATERAL (
        SELECT array_agg(j.ts ORDER BY u.i) AS next_ts, array_agg(j.pos ORDER BY u.i) AS next_pos
          FROM unnest({cams}) WITH ORDINALITY AS u(cam, i)
          LEFT JOIN LATERAL ({_first_cut("u.cam", "o", bound)}) j ON true
    ) a
  UNION ALL
    SELECT w.n + s.handed, w.beyond + s.past, s.ts, s.pos, s.cam, s.next_ts, s.next_pos,
           s.out_ts, s.out_pos, s.fast
      FROM camera_walk w CROSS JOIN LATERAL (
        (SELECT count(*) FILTER (WHERE d.changed) AS handed,
                sum({past("d.ts")}) FILTER (WHERE d.changed) AS past,
                (array_agg(d.ts ORDER BY d.ts DESC, d.pos DESC))[1] AS ts,
                (array_agg(d.pos ORDER BY d.ts DESC, d.pos DESC))[1] AS pos,
                (array_agg(d.cam ORDER BY d.ts DESC, d.pos DESC))[1] AS cam,
                w.next_ts, w.next_pos,
                array_agg(d.ts ORDER BY d.ts, d.pos) FILTER (WHERE d.changed) AS out_ts,
                array_agg(d.pos ORDER BY d.ts, d.pos) FILTER (WHERE d.changed) AS out_pos,
                true AS fast
           FROM (SELECT x.ts, x.pos, x.cam,
                        x.cam IS DISTINCT FROM lag(x.cam, 1, w.cam) OVER (ORDER BY x.ts, x.pos)
                          AS changed
                   FROM (SELECT e.timestamp_ms AS ts, e.position AS pos, e.camera_id AS cam
                           FROM {_DE} e WHERE {_CUT} AND {after} AND w.fast
                          ORDER BY e.timestamp_ms, e.position LIMIT {BATCH}) x) d
         HAVING count(*) FILTER (WHERE d.changed) > 0)
      UNION ALL
        (SELECT 1::bigint, {past("j.ts")}::bigint, j.ts, j.pos, j.cam, r.next_ts, r.next_pos,
                ARRAY[j.ts], ARRAY[j.pos], j.ts - w.ts < {FAST_EDIT_MS}
           FROM (SELECT array_agg(CASE WHEN {stale} THEN p.ts ELSE u.ts END ORDER BY u.i)
                          AS next_ts,
                        array_agg(CASE WHEN {stale} THEN p.pos ELSE u.pos END ORDER BY u.i)
                          AS next_pos
                   FROM unnest({cams}, w.next_ts, w.next_pos) WITH ORDINALITY AS u(cam, ts, pos, i)
                   LEFT JOIN LATERAL ({_first_cut("u.cam", "w", f"{bound} AND {stale}")}) p
                     ON true) r
          CROSS JOIN LATERAL (
                SELECT u.cam, u.ts, u.pos
                  FROM unnest({cams}, r.next_ts, r.next_pos) AS u(cam, ts, pos)
                 WHERE u.ts IS NOT NULL AND u.cam IS DISTINCT FROM w.cam
                 ORDER BY u.ts, u.pos LIMIT 1) j)
        LIMIT 1
    ) s
    WHERE {more}
),
held_walk(n, beyond, ts, pos, held) AS (
    SELECT 0, 0, o.ts, o.pos, o.held FROM {origin} o
  UNION ALL
    SELECT w.n + 1, w.beyond + {past("x.ts")}, x.ts, x.pos, NOT w.held
      FROM held_walk w CROSS JOIN LATERAL (
        SELECT e.timestamp_ms AS ts, e.position AS pos FROM {_DE} e
         WHERE e.session_id = $1
           AND e.event_type = (CASE WHEN w.held THEN 'release' ELSE 'hold' END) AND {after}
         ORDER BY e.timestamp_ms, e.position LIMIT 1
    ) x
    WHERE {more}
),
cw AS (SELECT unnest(out_ts) AS ts, unnest(out_pos) AS pos FROM camera_walk WHERE n > 0),
hw AS (SELECT ts, pos, n, beyond FROM held_walk WHERE n > 0),
horizon AS MATERIALIZED (
    SELECT least({last("camera_walk")}, {last("hw")}, {b.ts_max}::bigint) AS t,
           {truncated("camera_walk")} OR {truncated("hw")} AS truncated
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
    SELECT e.timestamp_ms, e.position, e.event_type, e.camera_id, e.event_id
      FROM {origin} o, {_DE} e
     WHERE e.session_id = $1 AND e.timestamp_ms = (SELECT t FROM horizon)
       AND (e.timestamp_ms, e.position) > (o.ts, o.pos) AND e.position <= {b.max_position}
       AND e.event_type IN ('cut', 'hold', 'release')
)
SELECT h.t AS complete_to, h.truncated, {array("timestamp_ms")} AS ts, {array("position")} AS pos,
       {array("event_type")} AS types, {array("camera_id")} AS cams, {array("event_id")} AS ids"""


_PAGE_TAIL: Final = """
  FROM horizon h LEFT JOIN found f ON true
 GROUP BY h.t, h.truncated"""

# $1 session, $2 fromMs, $3 highest position
START: Final = (
    f"WITH RECURSIVE {_start('$2', '$3')}\n"
    "SELECT (SELECT coalesce(array_agg(cam), '{}') FROM cameras) AS cameras, o.*"
    " FROM origin o"
)
# $1 session, $2..$5 the origin (ts, pos, camera, held), $6 steps, $7 ts_max, $8 highest
# position, $9 the cameras, $10 soft bound, $11 steps beyond it
PAGE: Final = (
    "WITH RECURSIVE"
    " origin AS (SELECT $2::bigint AS ts, $3::bigint AS pos, $4::text AS camera,"
    " $5::boolean AS held),"
    " cameras AS MATERIALIZED (SELECT unnest($9::text[]) AS cam),"
    + _walk("origin", "cameras", Bounds("$6", "$7", "$8", "$10", "$11"))
    + _PAGE_TAIL
)


def _first(max_position: str, ceiling: str, from_ms: str, prelude: str = "") -> str:
    return (
        f"WITH RECURSIVE {prelude}{_start(from_ms, max_position)},"
        + _walk("origin", "cameras", Bounds("$4", ceiling, max_position, "$3", "$5"))
        + f", {known_columns('$6::text[]')},"
        " (SELECT camera FROM origin) AS camera, (SELECT held FROM origin) AS held,"
        f" {max_position}::bigint AS max_position, {ceiling}::bigint AS ceiling" + _PAGE_TAIL
    )


# $1 session, $2 fromMs, $3 toMs, $4 steps, $5 steps past toMs, $6 the tables to check,
# $7 the latest timestamp to look at
FIRST: Final = _first(str(MAX_POSITION), "$7::bigint", "$2")
# the same, $7 asOf (epoch ms)
FIRST_AS_OF: Final = _first(
    "(SELECT p FROM asof)",
    "(SELECT ts FROM ceiling)",
    "least($2, (SELECT ts FROM ceiling))",
    prelude=as_of_ctes("$7") + ",",
)


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
    truncated: bool  # a walk ran out of steps (else: all of them up to the bound asked)


@dataclass(frozen=True, slots=True)
class First:
    shot: Shot  # on air where the page begins
    page: Page
    checkpoint: int
    session_position: int | None
    max_position: int  # the highest log position it looked at (asOf: the one asOf stands for)
    ceiling: int  # the latest timestamp it looked at


def _page(row: asyncpg.Record) -> Page:
    columns = [row[name] or [] for name in ("ts", "pos", "types", "cams", "ids")]
    switches = [Switch(*values) for values in zip(*columns, strict=True)]
    return Page(switches, row["complete_to"], row["truncated"])


async def first(
    conn: asyncpg.Connection,
    session_id: str,
    window: tuple[int, int],
    steps: tuple[int, int],
    tables: list[str],
    as_of: int | None,
) -> First:
    """The window walked from its start, and `steps[1]` shot changes past it, in one go
    (`steps[0]`: at most this many per walk)."""
    if as_of is None:
        row = await conn.fetchrow(FIRST, session_id, *window, *steps, tables, MAX_EPOCH_MS)
    else:
        row = await conn.fetchrow(FIRST_AS_OF, session_id, *window, *steps, tables, as_of)
    assert row is not None
    return First(
        Shot(row["camera"], row["held"]),
        _page(row),
        int(row["checkpoint"] or 0),
        row["session_position"],
        row["max_position"],
        row["ceiling"],
    )


async def start(
    conn: asyncpg.Connection, session_id: str, from_ms: int, max_position: int
) -> Start:
    row = await conn.fetchrow(START, session_id, from_ms, max_position)
    assert row is not None
    return Start(list(row["cameras"]), row["ts"], row["pos"], Shot(row["camera"], row["held"]))


async def page(
    conn: asyncpg.Connection,
    session_id: str,
    cameras: list[str],
    after: tuple[int, int],
    shot: Shot,
    bounds: tuple[int, int, int],
    soft: tuple[int, int],
) -> Page:
    """Shot changes after `after`, the shot on air there: `bounds` = (steps, ts_max,
    highest position), `soft` = (a timestamp, steps allowed past it)."""
    steps, ts_max, max_position = bounds
    row = await conn.fetchrow(
        PAGE,
        session_id,
        after[0],
        after[1],
        shot.camera_id,
        shot.held,
        steps,
        ts_max,
        max_position,
        cameras,
        *soft,
    )
    assert row is not None
    return _page(row)
