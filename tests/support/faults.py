"""Fault-test helpers: watching a `serve` from outside (/readyz, the checkpoint) while its
broker or database is taken away, and the end-of-scenario audit of the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import nats

from motionledger.adapters.postgres.database import connect
from motionledger.services.verify import verify_chain
from motionledger.settings import Settings
from tests.support.ledger import ServeProcess
from tests.support.load import Load, Running

PROJECTIONS = importlib.util.find_spec("motionledger.services.rebuild") is not None


async def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=3) as http:
        response = await http.get(f"{base_url}/readyz")
        return response.status_code, response.json()


async def wait_readiness(
    base_url: str, *, ready: bool, failing: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """Until /readyz says `ready` (and, when not ready, that check `failing` is the cause)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            status, body = await readyz(base_url)
            last = body
            checks = body.get("result", {}).get("checks", {})
            if ready and status == 200:
                return body
            if not ready and status == 503 and (failing is None or not checks[failing]["ok"]):
                return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never said ready={ready} ({failing}): {last}")


async def role(base_url: str) -> str | None:
    """'active' / 'standby' from /readyz, None when it does not answer."""
    with contextlib.suppress(httpx.HTTPError, KeyError, TypeError):
        _, body = await readyz(base_url)
        return str(body["result"]["checks"]["ingest"]["detail"]["role"])
    return None


class Checkpoint:
    """The committed stream sequence, read over a connection that survives restarts."""

    def __init__(self, dsn: str, stream: str) -> None:
        self.dsn, self.stream = dsn, stream
        self._conn: asyncpg.Connection | None = None

    async def get(self) -> int | None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.dsn, timeout=2)
            value = await self._conn.fetchval(
                "SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1",
                self.stream,
                timeout=2,
            )
            return int(value or 0)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if self._conn is not None:
                self._conn.terminate()
            self._conn = None
            return None

    async def wait_beyond(self, seq: int, timeout: float) -> float:
        """Seconds until the checkpoint passes `seq`."""
        started = time.monotonic()
        while True:
            value = await self.get()
            if value is not None and value > seq:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"ingestion did not resume past {seq} in {timeout}s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


@contextlib.asynccontextmanager
async def checkpoint(dsn: str, stream: str) -> AsyncIterator[Checkpoint]:
    probe = Checkpoint(dsn, stream)
    try:
        yield probe
    finally:
        await probe.close()


async def stream_last_seq(servers: list[str], stream: str, **options: Any) -> int:
    client = await nats.connect(servers, connect_timeout=3, max_reconnect_attempts=5, **options)
    try:
        for attempt in range(50):
            try:
                info = await client.jetstream(timeout=3).stream_info(stream)
                return int(info.state.last_seq)
            except Exception:  # a cluster still electing: ask again
                if attempt == 49:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await client.close()
    raise AssertionError("unreachable")


async def wait_drained(dsn: str, stream: str, last_seq: int, timeout: float = 60) -> None:
    async with checkpoint(dsn, stream) as probe:
        deadline = time.monotonic() + timeout
        while (await probe.get() or 0) < last_seq:
            assert time.monotonic() < deadline, (
                f"ingest did not drain the stream: at {await probe.get()} of {last_seq}"
            )
            await asyncio.sleep(0.1)


@dataclass
class Audit:
    events: int
    sessions: int
    epochs: int


async def audit(dsn: str, load: Load) -> Audit:
    """Every accepted event exactly once, positions gap-free, stream order kept (and each
    session's order), the chain verifies, no good event dead-lettered."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT position, event_id, session_id, stream_epoch, stream_seq "
            "FROM ledger.events ORDER BY position"
        )
        positions = [r["position"] for r in rows]
        assert positions == list(range(1, len(rows) + 1)), "positions are not gap-free"
        ids = [r["event_id"] for r in rows]
        assert len(set(ids)) == len(ids), "an event was logged twice"
        expected = load.all_ids()
        missing = expected - set(ids)
        assert not missing, f"{len(missing)} acknowledged events are not in the log"
        assert set(ids) == expected, f"{len(set(ids) - expected)} events nobody sent"
        places = [(r["stream_epoch"], r["stream_seq"]) for r in rows]
        assert places == sorted(places), "log order differs from stream order"
        assert len(set(places)) == len(places)
        for session, sent in load.sent.items():
            in_log = [r["event_id"] for r in rows if r["session_id"] == session]
            assert in_log == sent, f"session {session}: log order differs from publish order"
        dead = await conn.fetch("SELECT reason, detail FROM ledger.dead_letters LIMIT 5")
        assert not dead, f"good events were dead-lettered: {[tuple(d) for d in dead]}"
        report = await verify_chain(conn)
        assert report.ok, report.broken
        return Audit(len(rows), len(load.sent), len({r["stream_epoch"] for r in rows}))
    finally:
        await conn.close()


async def read_tables(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    from motionledger.domain.projections import NAMES

    return {
        name: [tuple(r) for r in await conn.fetch(f"SELECT * FROM production.{name} ORDER BY id")]
        for name in NAMES
    }


async def assert_read_tables_equal_a_rebuild(dsn: str, timeout: float = 60) -> None:
    """Once the projectors caught up with the log: the tables they built under the faults
    equal a fresh rebuild of the same log, row for row."""
    if not PROJECTIONS:
        return
    from motionledger.services.rebuild import rebuild

    conn = await connect(dsn)
    try:
        head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch("SELECT projection, position FROM production.projection_state")
            positions = dict(rows)
            if set(positions.values()) == {head}:
                break
            assert time.monotonic() < deadline, f"projections not caught up: {positions} < {head}"
            await asyncio.sleep(0.1)
        live = await read_tables(conn)
        await rebuild(dsn)
        rebuilt = await read_tables(conn)
    finally:
        await conn.close()
    for name, rows in live.items():
        assert len(rows) == len(rebuilt[name]), (
            f"{name}: {len(rows)} rows, a rebuild has {len(rebuilt[name])}"
        )
        assert rows == rebuilt[name], f"{name}: live projection differs from a rebuild"


async def finish(
    settings: Settings, running: Running, serve: ServeProcess, **options: Any
) -> Audit:
    """End of a scenario: stop the load, let the ledger drain the stream, audit the log and
    the read tables, and stop `serve` cleanly (SIGTERM, exit 0)."""
    load = await running.stop()
    assert settings.database_url is not None
    last = await stream_last_seq(settings.nats_servers, settings.stream, **options)
    await wait_drained(settings.database_url, settings.stream, last)
    result = await audit(settings.database_url, load)
    assert result.events == load.count > 0
    await assert_read_tables_equal_a_rebuild(settings.database_url)
    assert await asyncio.to_thread(serve.terminate) == 0, serve.tail()
    print(
        f"audit: {result.events} events in {result.sessions} sessions, "
        f"{load.retries} publish retries, all exactly once"
    )
    return result
