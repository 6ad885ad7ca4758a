"""The derived reads: cut-log, hero-windows and alignment, each answered in one snapshot.

Each answer is read in one snapshot — a single statement where that suffices (most cut-log
windows, alignment), else a REPEATABLE READ read-only transaction — so its parts agree with
each other and with the checkpoint read there: the answer reflects every event at or below
the position it returns (the lowest checkpoint of the read tables it used, or for an asOf
read the position asOf stands for, once the read tables have reached it; the rows logged by
then never change, so an asOf read may continue in a later snapshot).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import msgspec

from ..adapters.postgres import cut_log as cut_sql
from ..adapters.postgres import derived as sql
from ..adapters.postgres.database import Connection, Pool, acquired
from ..adapters.postgres.database import snapshot as snapshot_of
from ..domain.derived import (
    CutLogBuilder,
    HeroWindowBuilder,
    Window,
    align,
    on_air_ms,
    overlapping,
    window_settled,
)
from ..domain.derived_answers import alignment_answer, cut_log_answer, hero_window_answer
from ..domain.events import MAX_EPOCH_MS
from ..domain.projections import DIRECTOR_EVENTS, MUSIC_MOMENTS, SESSIONS, STILL_CANDIDATES
from ..errors import NotCaughtUp, NotFound
from .positions import NO_WAIT, Answer, Attempt, Positions

T = TypeVar("T")

_SLACK: Final = 16  # shot changes a page walks beyond `limit` (cuts overridden in their ms)
_BEYOND: Final = 2  # shot changes a page walks past the window (to end its last segment)


@dataclass(frozen=True, slots=True)
class Derived:
    pool: Pool
    # waits for the read tables (asOf, minPosition); NO_WAIT: a read behind fails at once
    positions: Positions = NO_WAIT

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        async with snapshot_of(self.pool) as conn:
            yield conn

    async def caught_up(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` (a snapshot of its own each time) until the read tables have
        reached what it needs, within the wait budget (woken by the projector's
        notifications, never polling); then NotCaughtUp."""
        deadline = self.positions.deadline()
        while True:
            try:
                return await attempt()
            except NotCaughtUp as behind:
                await self.positions.reached(behind.position, deadline, behind.checkpoint)

    async def at_least(
        self, min_position: int | None, attempt: Attempt, *, as_of: bool = False
    ) -> Answer:
        """`attempt`'s answer once it reflects every event up to `min_position`."""
        return await self.positions.at_least(min_position, attempt, as_of=as_of)

    # -- cut-log --------------------------------------------------------------------------
    async def cut_log(
        self, session_id: str, from_ms: int, to_ms: int, limit: int, as_of: int | None = None
    ) -> Answer:
        window = (from_ms, to_ms)
        tables = [SESSIONS.name, DIRECTOR_EVENTS.name]

        async def attempt() -> Answer:
            # most windows are settled by one statement, its own snapshot
            async with acquired(self.pool) as conn:
                first = await cut_sql.first(
                    conn, session_id, window, (limit + _SLACK, _BEYOND), tables, as_of
                )
            position = first.checkpoint
            if as_of is None:
                if first.session_position is None:
                    raise NotFound(f"session {session_id} is unknown")
            else:
                position = first.max_position
                check_as_of(session_id, as_of, position, first.checkpoint, first.session_position)
            builder = CutLogBuilder(first.shot).feed_all(first.page.switches)
            page = first.page
            if page.truncated and not window_settled(builder, *window, limit, page.complete_to):
                # the long way, in a snapshot (asOf: the rows logged by then do not change)
                async with self.snapshot() as conn:
                    if as_of is None:
                        position = await _known(conn, session_id, (DIRECTOR_EVENTS.name,))
                    bounds = (first.max_position, first.ceiling)
                    builder = await cut_log_in(conn, session_id, window, limit, bounds)
            return _cut_log_answer(builder, *window, limit), position

        return await (self.caught_up(attempt) if as_of is not None else attempt())

    # -- hero-windows -----------------------------------------------------------------------
    async def hero_windows(
        self, session_id: str, pad_ms: int, limit: int, from_ms: int, to_ms: int
    ) -> Answer:
        async with self.snapshot() as conn:
            position = await _known(conn, session_id, (DIRECTOR_EVENTS.name, STILL_CANDIDATES.name))
            windows = await _windows(conn, session_id, pad_ms, limit, from_ms, to_ms)
            stills = await sql.stills_in(
                conn, session_id, [(w.start_ms, w.end_ms) for w in windows]
            )
        answer = [hero_window_answer(w, s) for w, s in zip(windows, stills, strict=True)]
        return msgspec.json.encode(answer), position

    # -- alignment --------------------------------------------------------------------------
    async def alignment(self, session_id: str, from_ms: int, to_ms: int, limit: int) -> Answer:
        tables = [SESSIONS.name, DIRECTOR_EVENTS.name, MUSIC_MOMENTS.name]
        async with acquired(self.pool) as conn:  # one statement: its own snapshot
            found = await sql.alignment_items(conn, session_id, (from_ms, to_ms), limit, tables)
        if found.session_position is None:
            raise NotFound(f"session {session_id} is unknown")
        around = found.around
        answer = alignment_answer(align(*item, around.of(item[2])) for item in found.items)
        return msgspec.json.encode(answer), found.checkpoint


async def _known(conn: Connection, session_id: str, tables: tuple[str, ...]) -> int:
    """The position the answer will reflect; a 404 for a session the snapshot does not know."""
    checkpoint, session_position = await sql.checkpoint(conn, session_id, (SESSIONS.name, *tables))
    if session_position is None:
        raise NotFound(f"session {session_id} is unknown")
    return checkpoint


def check_as_of(
    session_id: str, as_of: int, position: int, checkpoint: int, session_position: int | None
) -> None:
    """An asOf read stands for log `position`: the read tables must have reached it, and
    the session must have been started by then (else a 404)."""
    if checkpoint < position:
        raise NotCaughtUp(position, checkpoint)
    if session_position is None or session_position > position:
        raise NotFound(f"session {session_id} was not started as of {as_of}")


async def cut_log_in(
    conn: Connection,
    session_id: str,
    window: tuple[int, int],
    limit: int,
    bounds: tuple[int, int] = (cut_sql.MAX_POSITION, MAX_EPOCH_MS),
) -> CutLogBuilder:
    """The cut log of a window the long way: the shot on air at fromMs and where its
    segment began, by probes; then only the events that change the shot, page by page,
    until the first `limit` segments overlapping the window are settled. `bounds`: the
    highest log position and timestamp to look at."""
    from_ms, to_ms = window
    max_position, ceiling = bounds
    start = await cut_sql.start(conn, session_id, min(from_ms, ceiling), max_position)
    builder = CutLogBuilder(start.shot)
    after = (start.timestamp_ms, start.position)
    steps, beyond = limit + _SLACK, _BEYOND
    while True:
        page = await cut_sql.page(
            conn,
            session_id,
            start.cameras,
            after,
            builder.shot,
            (steps, ceiling, max_position),
            (to_ms, beyond),
        )
        builder.feed_all(page.switches)
        if not page.truncated or window_settled(builder, from_ms, to_ms, limit, page.complete_to):
            return builder
        after = (page.complete_to, cut_sql.MAX_POSITION)
        if page.complete_to >= to_ms:  # past the window: only the end of its last segment
            beyond *= 2


def _cut_log_answer(builder: CutLogBuilder, from_ms: int, to_ms: int, limit: int) -> bytes:
    segments = overlapping(builder.segments(), from_ms, to_ms)[:limit]
    return msgspec.json.encode(cut_log_answer(segments, on_air_ms(segments)))


async def _windows(
    conn: Connection, session_id: str, pad_ms: int, limit: int, from_ms: int, to_ms: int
) -> list[Window]:
    """The first `limit` hero windows overlapping [fromMs, toMs]: markers from the first one
    chained to any marker reaching fromMs, page by page, until they are settled."""
    start = await sql.marker_chain_start(conn, session_id, from_ms - pad_ms, pad_ms)
    if start is None:
        return []
    builder = HeroWindowBuilder(pad_ms)
    count = 2 * limit + 16
    while True:
        markers = await sql.markers_from(conn, session_id, start, count)
        for marker in markers:
            builder.feed(marker)
        found = [w for w in builder.closed if w.overlaps(from_ms, to_ms)]
        beyond = builder.open is not None and builder.open.start_ms > to_ms
        if len(markers) < count or len(found) >= limit or beyond:
            break
        last = markers[-1]
        start = (last.timestamp_ms, last.position + 1)
        count *= 2
    return [w for w in builder.windows() if w.overlaps(from_ms, to_ms)][:limit]
