"""The projector: the log → the six read tables, in position order, exactly once.

One loop for all six tables, in the manner of the ingest loop:

    take the projector lease (an advisory lock on the connection that writes; a second
    `serve` stands by here)
    loop: in one transaction, lock the six checkpoints, apply the next range of the log to
          every table with one set-based statement, move the checkpoints, NOTIFY
          `motionledger_projected`; then, when caught up, sleep until woken

Why one loop rather than six: every batch is scanned once (the statement's `batch` CTE feeds
all six tables), one transaction and one NOTIFY per batch instead of six, and a write that
waits for "projected" waits for one checkpoint, not the slowest of six loops. The tables
still keep a checkpoint each, so a rebuild can move one of them on its own: every batch
starts from each table's own checkpoint.

Woken by the ingest's NOTIFY on `motionledger_log` (any process) and by the in-process
ingest callback; a slow poll is only the fallback. A crash loses nothing: rows and
checkpoints commit together, and the next start resumes from the checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence

import asyncpg

from .. import logs, metrics
from ..adapters.postgres import ledger
from ..adapters.postgres.database import DB_DOWN, connect, take_lease
from ..adapters.postgres.projections import PROJECTOR_LEASE, Applier, Step
from ..domain.projections import PROJECTIONS, Projection
from .backoff import Backoff

log = logs.get(__name__)

DEFAULT_BATCH = 5000  # log positions per transaction when catching up
# At most one step per PACE_S: at live rates every ingest commit would wake a step of its
# own, and each step's round trip costs more CPU than its rows; a short pause folds a few
# commits into one step. Under load steps take longer than this anyway.
PACE_S = 0.004


class Projector:
    def __init__(
        self,
        dsn: str,
        *,
        projections: Sequence[Projection] = PROJECTIONS,
        batch: int = DEFAULT_BATCH,
        poll_s: float = 1.0,
        on_projected: Callable[[int], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._projections = tuple(projections)
        self._applier = Applier(self._projections, batch=batch)
        self._poll_s = poll_s
        self._on_projected = on_projected
        self._wake = asyncio.Event()
        self._backoff = Backoff()
        self.active = False  # holds the lease and projects
        self.position = 0  # the lowest checkpoint of its tables after the last batch
        self.head = 0  # the highest log position it knows of
        self._commits: deque[tuple[int, float]] = deque()  # (head, heard at) not yet applied

    def wake(self, head: int | None = None) -> None:
        """New events are in the log (up to `head`, if known): apply them now."""
        if head is not None and head > self.head:
            self.head = head
            if self.active and len(self._commits) < 10_000:
                # when this ingest commit was heard of: its commit-to-visible delay is measured
                self._commits.append((head, time.monotonic()))
        self._wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.wake(int(payload))
            return
        self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._dsn, timeout=5)
                # The read tables are derived data: a commit lost to a database crash takes
                # its checkpoint with it (same transaction, WAL order), and the batch is
                # applied again from the durable log. Not waiting for the flush halves a
                # batch's latency under load.
                await conn.execute("SET synchronous_commit = off")
                if not await self._lease(conn, stop):
                    break
                self._commits.clear()
                self.active = True
                log.info("projector_active", projections=[p.name for p in self._projections])
                await conn.add_listener(ledger.LOG_CHANNEL, self._notified)
                await self._project(conn, stop)
            except DB_DOWN as error:
                metrics.DATABASE_UP.set(0)
                log.warning("projector_database_unavailable", error=str(error) or repr(error))
                await self._backoff.sleep(stop)
            except Exception as error:
                # a bug or a refused batch: say so loudly, start over from the checkpoints
                log.exception("projector_failed", error=repr(error))
                await self._backoff.sleep(stop)
            finally:
                self.active = False
                if conn is not None:
                    conn.terminate()  # releases the lease at once
        log.info("projector_stopped", position=self.position)

    async def _lease(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", PROJECTOR_LEASE):
            return True
        log.info("projector_standby", reason="another process holds the projector lease")
        return await take_lease(conn, PROJECTOR_LEASE, stop)

    async def _project(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        last_step = 0.0
        while not stop.is_set():
            pause = last_step + PACE_S - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            last_step = time.monotonic()
            self._wake.clear()  # before reading: a wake-up during the batch is not lost
            step = await self._applier.step(conn)
            self._backoff.reset()
            self._observe(step)
            if step.events and self._on_projected is not None:
                self._on_projected(step.position)
            if step.events and not step.caught_up:
                continue
            waits = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
            try:
                await asyncio.wait(waits, timeout=self._poll_s, return_when="FIRST_COMPLETED")
            finally:
                for waiting in waits:
                    waiting.cancel()

    def _observe(self, step: Step) -> None:
        now = time.time()
        self.position = step.position
        self.head = max(self.head, step.head)
        if step.next_recorded_at is None or step.caught_up:
            lag_s = 0.0
        else:
            lag_s = max(0.0, now - step.next_recorded_at.timestamp())
        for name, before in step.before.items():
            position = max(before, step.position)
            metrics.PROJECTION_POSITION.labels(name).set(position)
            metrics.PROJECTION_LAG.labels(name).set(max(0, step.head - position))
            metrics.PROJECTION_LAG_SECONDS.labels(name).set(lag_s)
        while self._commits and self._commits[0][0] <= step.position:
            _, committed = self._commits.popleft()
            metrics.PROJECTION_DELAY.observe(max(0.0, time.monotonic() - committed))
        by_lane: dict[str, list[float]] = {}
        for lane, published in zip(step.lanes, step.published, strict=True):
            by_lane.setdefault(lane, []).append(published)
        for lane, stamps in by_lane.items():
            metrics.observe_many(
                metrics.PUBLISH_TO_VISIBLE.labels(lane), [max(0.0, now - stamp) for stamp in stamps]
            )
        if step.events:
            log.debug("projected", position=step.position, head=step.head, events=step.events)
