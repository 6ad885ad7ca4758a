"""The projector service: woken by NOTIFY, one active instance, and crashes that lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import asyncpg

from motionledger import metrics
from motionledger.adapters.postgres import ledger
from motionledger.adapters.postgres.database import connect
from motionledger.adapters.postgres.projection_sql import PROJECTED_CHANNEL
from motionledger.services.projectors import Projector
from motionledger.services.rebuild import rebuild
from tests.integration.test_projection_contract import random_log
from tests.support.projections import (
    all_dumps,
    append,
    assert_tables_equal_twin,
    twin_from_log,
)


async def until(check: Callable[[], object], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await _value(check()):
        if time.monotonic() > deadline:
            raise TimeoutError(what or "condition not met")
        await asyncio.sleep(0.01)


async def _value(value: object) -> object:
    return await value if asyncio.iscoroutine(value) else value


async def min_position(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT min(position) FROM production.projection_state"))


@contextlib.asynccontextmanager
async def projecting(projector: Projector) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(projector.run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def notify_log(db: asyncpg.Connection) -> None:
    head = await db.fetchval("SELECT max(position) FROM ledger.events")
    await db.execute("SELECT pg_notify($1, $2)", ledger.LOG_CHANNEL, str(head))


async def test_projector_is_woken_by_notify_and_announces_its_commits(
    database_url: str, db: asyncpg.Connection
) -> None:
    announced: asyncio.Queue[str] = asyncio.Queue()
    listener = await connect(database_url)
    await listener.add_listener(PROJECTED_CHANNEL, lambda *args: announced.put_nowait(args[3]))
    projected: list[int] = []
    # a slow poll: only NOTIFY can make this fast
    projector = Projector(database_url, poll_s=30, on_projected=projected.append)
    try:
        async with projecting(projector):
            await until(lambda: projector.active, what="projector active")
            logged = await append(db, random_log(random.Random(5), 200))
            await notify_log(db)
            head = logged[-1].position
            assert await asyncio.wait_for(announced.get(), 5) == str(head)
            await until(lambda: projected == [head], 5, "on_projected called")
            await assert_tables_equal_twin(db, await twin_from_log(db))
            value = metrics.REGISTRY.get_sample_value(
                "motionledger_projection_position", {"projection": "director_events"}
            )
            assert value == head
            assert (
                metrics.REGISTRY.get_sample_value(
                    "motionledger_projection_lag_positions", {"projection": "sessions"}
                )
                == 0
            )
            # the in-process wake-up works without any NOTIFY
            more = await append(db, random_log(random.Random(6), 30, "w"))
            projector.wake(more[-1].position)
            await until(lambda: projected[-1] == more[-1].position, 5, "woken in process")
    finally:
        await listener.close()


async def test_one_projector_at_a_time_the_standby_takes_over(
    database_url: str, db: asyncpg.Connection
) -> None:
    first = Projector(database_url, poll_s=0.05)
    second = Projector(database_url, poll_s=0.05)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    running_first = asyncio.ensure_future(first.run(stop_first))
    await until(lambda: first.active, what="first active")
    running_second = asyncio.ensure_future(second.run(stop_second))
    try:
        logged = await append(db, random_log(random.Random(1), 50))
        await until(lambda: first.position == logged[-1].position, what="first projects")
        assert not second.active
        stop_first.set()  # the active one goes away: the standby carries on
        await asyncio.wait_for(running_first, 10)
        await until(lambda: second.active, what="standby took over")
        logged = await append(db, random_log(random.Random(2), 50, "x"))
        await until(lambda: second.position == logged[-1].position, what="second projects")
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(running_first, running_second), 10)
    await assert_tables_equal_twin(db, await twin_from_log(db))


async def test_killed_between_and_during_batches_nothing_lost_or_doubled(
    database_url: str, db: asyncpg.Connection
) -> None:
    """Cancel the projector right after a commit or a moment into its next transaction, then
    SIGKILL a projector process the same way; the tables end equal to the twin and to a
    fresh rebuild."""
    await append(db, random_log(random.Random(11), 1500))
    head = await db.fetchval("SELECT max(position) FROM ledger.events")
    rnd = random.Random(7)
    loop = asyncio.get_running_loop()
    for _ in range(8):
        target = rnd.randrange(1, 20)
        delay = rnd.choice([0, 0.0005, 0.001, 0.002])
        holder: list[asyncio.Task[None]] = []

        def committed(_: int, seen: list[int] = [0], holder: list = holder) -> None:  # noqa: B006
            seen[0] += 1
            if seen[0] == target and holder:  # noqa: B023 - target is read at once
                loop.call_later(delay, holder[0].cancel)  # noqa: B023

        projector = Projector(
            database_url, batch=rnd.choice([1, 3, 17]), poll_s=0.05, on_projected=committed
        )
        holder.append(asyncio.ensure_future(projector.run(asyncio.Event())))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(holder[0], 20)
    reached = await min_position(db)
    assert 0 < reached < head, "the cancellations should land mid-way"
    script = (
        "import asyncio, sys\n"
        "from motionledger.services.projectors import Projector\n"
        "asyncio.run(Projector(sys.argv[1], batch=2, poll_s=0.05).run(asyncio.Event()))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(3):
        before = await min_position(db)
        child = subprocess.Popen([sys.executable, "-c", script, database_url], env=env)
        try:
            await until(lambda b=before: _advanced(db, b), 30, "the child projects")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    assert await min_position(db) < head, "the kills should land mid-way"
    async with projecting(Projector(database_url, batch=500, poll_s=0.05)):
        await until(lambda: _at(db, head), 30, "caught up after the crashes")
    await assert_tables_equal_twin(db, await twin_from_log(db))
    projected = await all_dumps(db)
    await rebuild(database_url)
    assert await all_dumps(db) == projected


async def _advanced(db: asyncpg.Connection, before: int) -> bool:
    return await min_position(db) > before + 30


async def _at(db: asyncpg.Connection, head: int) -> bool:
    return await min_position(db) >= head


async def test_readiness_reports_a_lagging_projection_but_stays_ready(
    database_url: str, db: asyncpg.Connection
) -> None:
    from motionledger.daemon.runtime import Runtime
    from motionledger.settings import Settings

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        runtime = Runtime(Settings(ready_max_lag_ms=50), pool=pool)
        assert (await runtime.check_projections())[0]
        await append(db, random_log(random.Random(8), 20))
        await asyncio.sleep(0.1)
        ready, detail = await runtime.check_projections()
        assert ready  # lag is for metrics and alerts, not a reason to drain the replica
        assert detail["cameras"]["lagMs"] >= 50  # type: ignore[index]
        assert detail["cameras"]["lagging"]  # type: ignore[index]
        async with projecting(Projector(database_url, poll_s=0.05)):
            await until(lambda: _caught_up(runtime), 10, "caught up")
    finally:
        await pool.close()


async def _caught_up(runtime: object) -> bool:
    _, detail = await runtime.check_projections()  # type: ignore[attr-defined]
    return not any(d["lagging"] for d in detail.values())
