"""`python -m bench --only live`: the live session stream (issue 13).

1. What the index behind catch-up costs the ingest: the same backlog drained into a log with
   `events_session_position` (migration 0006) and into one without it, alternated, same run.
2. Followers of one session over SSE while it is published to at a steady rate, `serve` a
   child process: 100 followers at 100 ev/s, 10 at 1 000 ev/s, and the latter again with
   one more follower that never reads. Each level is also run with no follower, so the
   daemon's CPU for the deliveries is what the followers add.

publish→client: the bench stamps each event (`metadata.sentNs`, its own clock) just before
handing it to the producer; each follower, a raw asyncio socket in the bench's process,
takes the time a read returns and subtracts the stamps of the events it completes. Those
are upper bounds (the bench's own CPU is on the path; the machine's two cores are shared
by the publisher, the followers, the broker, PostgreSQL and the daemon). RSS: the daemon's
resident memory sampled every second; CPU: its CPU time over the level's wall time.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from motionledger.producer import DirectorEvent, Producer, SessionStarted, connect, make_event

from .drain import drain
from .infra import Daemon, Infra
from .stats import percentiles

SESSION = "live-bench"
_STAMP = b'"sentNs": '


@dataclass
class Level:
    label: str
    followers: int
    rate: float
    seconds: float
    stalled: bool = False  # one more follower that never reads


LEVELS = [
    Level("100 followers, 100 ev/s", 100, 100.0, 20.0),
    Level("10 followers, 1000 ev/s", 10, 1000.0, 20.0),
    Level("10 followers, 1000 ev/s + 1 never reading", 10, 1000.0, 40.0, stalled=True),
]
QUICK_LEVELS = [
    Level("20 followers, 100 ev/s", 20, 100.0, 3.0),
    Level("5 followers, 500 ev/s", 5, 500.0, 3.0),
    Level("5 followers, 500 ev/s + 1 never reading", 5, 500.0, 3.0, stalled=True),
]


@dataclass
class Follower:
    """A raw SSE client: counts events, keeps publish→receive latencies (ms)."""

    port: int
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    closed_by_server: bool = False
    _writer: asyncio.StreamWriter | None = None

    async def run(self, after: int) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer.write(
            f"GET /production/session/live?sessionId={SESSION}&after={after} HTTP/1.1\r\n"
            "Host: bench\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        pending = b""
        while chunk := await reader.read(1 << 16):
            now = time.time_ns()
            blocks = (pending + chunk).split(b"\n\n")
            pending = blocks.pop()
            for block in blocks:
                at = block.find(_STAMP)
                if at < 0:
                    continue
                start = at + len(_STAMP)
                end = start
                while end < len(block) and 48 <= block[end] <= 57:
                    end += 1
                self.latencies_ms.append((now - int(block[start:end])) / 1e6)
                self.events += 1
        self.closed_by_server = True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def stalled_follower(port: int, after: int) -> socket.socket:
    """A follower that sends its request and never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /production/session/live?sessionId={SESSION}&after={after} HTTP/1.1\r\n"
        "Host: bench\r\n\r\n".encode()
    )
    return sock


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def _publish(producer: Producer, rate: float, seconds: float) -> int:
    """`rate` director events a second for `seconds`, each stamped as it is handed over."""
    total = int(rate * seconds)
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int(rate * (time.perf_counter() - started)) + 1)
        while sent < due:
            stamp = {"sentNs": time.time_ns()}
            event = make_event(
                DirectorEvent,
                session_id=SESSION,
                timestamp_ms=time.time_ns() // 1_000_000,
                event_type="cut",
                camera_id=f"cam{sent % 4}",
                metadata=stamp,
            )
            await producer.submit(event)
            sent += 1
        await asyncio.sleep(0.002)
    await producer.flush()
    return sent


async def run_level(
    daemon: Daemon, nats_url: str, level: Level, *, followers: bool
) -> dict[str, Any]:
    """One level: followers connected (or none), the session published to, the daemon
    watched. Returns the level's figures."""
    async with connect(nats_url, subject_root=daemon.root) as producer:
        head = await _head(daemon)
        clients = [Follower(daemon.port) for _ in range(level.followers if followers else 0)]
        tasks = [asyncio.ensure_future(c.run(head)) for c in clients]
        stalled = stalled_follower(daemon.port, head) if followers and level.stalled else None
        expected = len(clients) + (1 if stalled else 0)

        async def connected() -> bool:
            return (
                _metric(await daemon.metrics_text(), "motionledger_live_streams_open") >= expected
            )

        await _until(connected, 60, "followers never connected")
        before = await daemon.metrics_text()
        rss: list[float] = []
        cpu_before, wall_before = daemon.cpu_seconds(), time.perf_counter()

        async def sample() -> None:
            while True:
                rss.append(daemon.ps.memory_info().rss / 2**20)
                await asyncio.sleep(1.0)

        sampling = asyncio.ensure_future(sample())
        try:
            sent = await _publish(producer, level.rate, level.seconds)

            async def delivered() -> bool:
                return all(c.events >= sent for c in clients)

            await _until(delivered, 120, "followers did not get every event")
        finally:
            sampling.cancel()
        wall = time.perf_counter() - wall_before
        cpu = daemon.cpu_seconds() - cpu_before
        after = await daemon.metrics_text()
        for client in clients:
            client.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stalled is not None:
            stalled.close()

        async def closed() -> bool:
            return _metric(await daemon.metrics_text(), "motionledger_live_streams_open") == 0

        await _until(closed, 60, "streams stayed open")
    skip = int(level.rate)  # the first second: connections warming up
    samples = [ms for c in clients for ms in c.latencies_ms[skip:]]
    third = max(1, len(rss) // 3)
    deliveries = len(clients) * sent / wall
    return {
        "label": level.label,
        "followers": len(clients),
        "stalled": stalled is not None,
        "rate": level.rate,
        "events": sent,
        "seconds": wall,
        "latency_ms": percentiles(samples),
        "complete": all(c.events == sent for c in clients),
        "cpu_cores": cpu / wall,
        "deliveries_per_s": deliveries,
        "rss_mb_first_third": statistics.mean(rss[:third]) if rss else 0.0,
        "rss_mb_last_third": statistics.mean(rss[-third:]) if rss else 0.0,
        "rss_mb_max": max(rss, default=0.0),
        "dropped": _metric(after, "motionledger_live_clients_dropped_total")
        - _metric(before, "motionledger_live_clients_dropped_total"),
        "events_sent": _metric(after, "motionledger_live_events_sent_total")
        - _metric(before, "motionledger_live_events_sent_total"),
    }


async def _head(daemon: Daemon) -> int:
    conn = await asyncpg.connect(daemon.database_url)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
    finally:
        await conn.close()


async def followers(infra: Infra, stream: str, root: str, *, quick: bool) -> list[dict[str, Any]]:
    """Every level, each once without followers (the baseline) and once with them."""
    database = await infra.database()
    daemon = await Daemon(infra, database, stream, root).start(hold=False)
    out = []
    try:
        async with connect(infra.nats_url, subject_root=root) as producer:
            await producer.publish(
                make_event(SessionStarted, session_id=SESSION, session_type="music_demo")
            )
        await _until(lambda: _started(daemon), 30, "the session never started")
        for level in QUICK_LEVELS if quick else LEVELS:
            baseline = None
            if not level.stalled:
                alone = Level(level.label, 0, level.rate, min(level.seconds, 10.0))
                baseline = await run_level(daemon, infra.nats_url, alone, followers=False)
            result = await run_level(daemon, infra.nats_url, level, followers=True)
            if baseline is not None:
                added = result["cpu_cores"] - baseline["cpu_cores"]
                result["baseline_cpu_cores"] = baseline["cpu_cores"]
                result["cpu_cores_per_1000_deliveries"] = added / (
                    result["deliveries_per_s"] / 1000
                )
            out.append(result)
    finally:
        daemon.stop()
    return out


async def _started(daemon: Daemon) -> bool:
    return await _head(daemon) > 0


async def index_cost(
    infra: Infra,
    new_stream: Callable[[], Awaitable[tuple[str, str]]],
    publish: Callable[[str, str, list[Any]], Awaitable[tuple[float, int]]],
    events: list[Any],
    reps: int,
) -> dict[str, Any]:
    """The same backlog drained with and without the catch-up index, alternated."""
    stream, root = await new_stream()
    _, last_seq = await publish(stream, root, events)
    rates: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(reps):
        for kind in ("with", "without"):
            database = await infra.database()
            if kind == "without":
                conn = await asyncpg.connect(database)
                try:
                    await conn.execute("DROP INDEX ledger.events_session_position")
                finally:
                    await conn.close()
            result, daemon = await drain(
                infra, database, stream, root, events=len(events), last_seq=last_seq
            )
            daemon.stop()
            await infra.drop_database(database)
            rates[kind].append(result.rate)
    with_index, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    return {
        "events": len(events),
        "with_runs": rates["with"],
        "without_runs": rates["without"],
        "with_rate": with_index,
        "without_rate": without,
        "ratio": with_index / without,
    }


async def figures(
    infra: Infra,
    new_stream: Callable[[], Awaitable[tuple[str, str]]],
    publish: Callable[[str, str, list[Any]], Awaitable[tuple[float, int]]],
    backlog: list[Any],
    *,
    reps: int,
    quick: bool,
    phase: Callable[[str], None],
) -> dict[str, Any]:
    phase(f"live: drain of {len(backlog):,} events with and without the catch-up index")
    index = await index_cost(infra, new_stream, publish, backlog, reps)
    phase("live: followers over SSE")
    stream, root = await new_stream()
    levels = await followers(infra, stream, root, quick=quick)
    return {"index": index, "levels": levels}
