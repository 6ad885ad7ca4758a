"""A stall is loud: the log table locked by another session while events wait. The gauge
climbs, /metrics and /readyz keep answering and show it, and once the lock goes, the events
land and the gauge falls back to 0."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families

from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import running_ledger


def stalled_seconds(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        if family.name == "motionledger_ingest_stalled_seconds":
            return float(family.samples[0].value)
    raise AssertionError("motionledger_ingest_stalled_seconds is not exported")


async def until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def test_a_locked_log_is_seen_as_a_stall_and_recovers(
    settings: Settings, db: asyncpg.Connection, nc: Client, database_url: str
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    base = f"http://127.0.0.1:{settings.http_port}"
    async with running_ledger(settings) as runtime, httpx.AsyncClient(base_url=base) as http:
        assert runtime.ingestor is not None
        await ev.publish_events(js, root, [ev.session_started("S1")])
        await until(lambda: _logged(db, 1), 20, "the first event")

        locker = await asyncpg.connect(database_url)
        try:
            await locker.execute("BEGIN; LOCK TABLE ledger.events IN ACCESS EXCLUSIVE MODE")
            waiting = [ev.director("S1", t) for t in range(20)]
            await ev.publish_events(js, root, waiting)

            async def gauge_climbs() -> bool:
                metrics = await http.get("/metrics", timeout=2)
                return stalled_seconds(metrics.text) >= 3

            await until(gauge_climbs, 30, "the stall gauge to climb")
            ready = await http.get("/readyz", timeout=5)
            ingest = ready.json()["result"]["checks"]["ingest"]["detail"]
            assert ready.status_code == 200  # a stall is an alert, not unreadiness
            assert ingest["stalledSeconds"] >= 3
            assert ingest["stuckAtSeq"] == 2
            assert ingest["streamLastSeq"] == 21
        finally:
            await locker.execute("ROLLBACK")
            await locker.close()

        await until(lambda: _logged(db, 21), 30, "the waiting events to land")

        async def gauge_falls() -> bool:
            return stalled_seconds((await http.get("/metrics")).text) == 0

        await until(gauge_falls, 10, "the stall gauge to fall back")
        assert runtime.ingestor.stall.seconds == 0


async def _logged(db: asyncpg.Connection, count: int) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM ledger.events") >= count)
