"""Running the projection SQL: one batch per transaction with its checkpoint, and how far
the projections trail the log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

import asyncpg

from ...domain.projections import Projection
from .errors import translating
from .ledger import LOG_CHANNEL
from .projection_sql import step_statement


@dataclass(frozen=True, slots=True)
class Step:
    """What one projector transaction did."""

    before: dict[str, int]  # the checkpoints it started from
    position: int  # the highest position applied (the new checkpoint of the laggards)
    head: int  # the log head it saw
    events: int
    lanes: list[str] = field(default_factory=list)
    published: list[float] = field(default_factory=list)  # epoch seconds, per event
    next_recorded_at: datetime | None = None  # the oldest event still to apply

    @property
    def caught_up(self) -> bool:
        return self.position >= self.head


class Applier:
    """Applies the log to a fixed set of projections, one batch per statement: a single
    round trip locks the checkpoints, applies, moves them and NOTIFYs, so a batch is never
    kept waiting between statements by whatever else shares the event loop."""

    def __init__(self, projections: Sequence[Projection], *, batch: int) -> None:
        self.names = [p.name for p in projections]
        self.batch = batch
        self._sql = step_statement(projections)

    @translating
    async def step(self, conn: asyncpg.Connection) -> Step:
        row = await conn.fetchrow(self._sql, self.batch)
        assert row is not None
        before = dict(zip(self.names, row["before"] or [], strict=False))
        missing = set(self.names) - set(before)
        if missing:
            raise RuntimeError(f"production.projection_state has no row for {missing}")
        low = min(before.values())
        return Step(
            before,
            row["last"] if row["last"] is not None else low,
            row["head"],
            row["events"],
            row["lanes"] or [],
            row["published"] or [],
            row["next_recorded_at"],
        )


@translating
async def prepare_projector(
    conn: asyncpg.Connection, on_commit: Callable[[Any, int, str, str], None]
) -> None:
    """The projector's connection: commits not waited for (read tables are rebuilt from the
    durable log), and told of every ingest commit (a NOTIFY carrying the new head)."""
    await conn.execute("SET synchronous_commit = off")
    await conn.add_listener(LOG_CHANNEL, on_commit)


class Lag(NamedTuple):
    projection: str
    position: int  # its checkpoint
    head: int  # the log's
    lag_ms: int  # the age of its oldest unapplied event (0 when caught up)


@translating
async def lag(pool: asyncpg.Pool) -> list[Lag]:
    """Per projection: checkpoint, head, and the age (ms) of its oldest unapplied event.
    Waits for no lock (a log locked by a migration must not hold a probe up): Contended."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute("SET LOCAL lock_timeout = '200ms'")
        rows = await conn.fetch(_LAG)
    return [Lag(*row) for row in rows]


_LAG: Final = """
        SELECT s.projection, s.position, h.head,
               CASE WHEN h.head > s.position THEN
                    (extract(epoch FROM clock_timestamp() - e.recorded_at) * 1000)::bigint
               ELSE 0 END AS lag_ms
          FROM production.projection_state s
         CROSS JOIN (SELECT coalesce(max(position), 0) AS head FROM ledger.events) h
          LEFT JOIN ledger.events e ON e.position = s.position + 1
         ORDER BY s.projection
"""


@translating
async def head(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
    return int(value)
