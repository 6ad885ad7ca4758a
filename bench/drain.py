"""(d) the ledger draining a backlog: `serve` as a child, started with its writer lease held
by the bench; the clock runs from releasing the lease (ingestion starts) to the commit
whose NOTIFY carries the last position, and the checkpoint is then checked to be the
stream's last sequence. Start-up of the process is outside the clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from motionledger.adapters.postgres.ledger import LOG_CHANNEL

from .infra import Daemon, Infra


@dataclass
class Drain:
    events: int
    seconds: float
    cpu_seconds: float
    checkpoint: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


class HeadWatcher:
    """Every NOTIFY of a position on `channel` (by default the ingest commits'), with the
    time it arrived (perf_counter ns)."""

    def __init__(self, channel: str = LOG_CHANNEL) -> None:
        self.channel = channel
        self.commits: list[tuple[int, int]] = []  # (ns, head position)
        self._conn: asyncpg.Connection | None = None
        self._target = 0
        self._reached = asyncio.Event()
        self.head = 0

    async def start(self, database_url: str) -> HeadWatcher:
        self._conn = await asyncpg.connect(database_url)
        await self._conn.add_listener(self.channel, self._notified)
        return self

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        head = int(payload)
        self.commits.append((time.perf_counter_ns(), head))
        self.head = max(self.head, head)
        if self.head >= self._target:
            self._reached.set()

    async def until(self, head: int, timeout: float) -> int:
        """Wait for a commit at or past `head`; the perf_counter ns it arrived."""
        self._target = head
        if self.head < head:
            self._reached.clear()
            await asyncio.wait_for(self._reached.wait(), timeout)
        return next(ns for ns, h in self.commits if h >= head)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


async def checkpoint(database_url: str, stream: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        value = await conn.fetchval(
            "SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1", stream
        )
        return int(value or 0)
    finally:
        await conn.close()


async def drain(
    infra: Infra,
    database_url: str,
    stream: str,
    root: str,
    *,
    events: int,
    last_seq: int,
    timeout: float = 600,
) -> tuple[Drain, Daemon]:
    """Drain `events` (all valid, all new) sitting in `stream` on top of the log there is.

    Returns the measurement and the still running daemon (the caller stops it)."""
    daemon = await Daemon(infra, database_url, stream, root).start(hold=True)
    base_head = await wait_projected(database_url, timeout=60)  # no catch-up is timed
    watcher = await HeadWatcher().start(database_url)
    try:
        cpu_before = daemon.cpu_seconds()
        started = time.perf_counter_ns()
        await daemon.release()
        finished = await watcher.until(base_head + events, timeout)
        cpu = daemon.cpu_seconds() - cpu_before
    finally:
        await watcher.close()
    seq = await checkpoint(database_url, stream)
    if seq != last_seq:
        raise RuntimeError(f"checkpoint {seq} is not the stream's last sequence {last_seq}")
    return Drain(events, (finished - started) / 1e9, cpu, seq), daemon


async def wait_projected(database_url: str, timeout: float = 1800) -> int:
    """Until every read table has applied the whole log; the log's head."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lowest = await conn.fetchval("SELECT min(position) FROM production.projection_state")
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
            if lowest is not None and lowest >= head:
                return int(head)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"read tables still behind the log after {timeout:.0f} s")
    finally:
        await conn.close()
