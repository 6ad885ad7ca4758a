"""The broker or the database goes away under a steady mixed load — stopped, or frozen with
SIGSTOP so connections hang instead of closing — and comes back: `/readyz` tells the truth
meanwhile, ingestion resumes within seconds, nothing is lost or logged twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.embedded.postgres import PostgresProcess
from motionledger.settings import Settings
from tests.support.faults import checkpoint, finish, wait_readiness
from tests.support.ledger import ServeProcess
from tests.support.load import Load, Running

RESUME_WITHIN_S = 5.0  # after the service is back


async def outage(
    serve: ServeProcess,
    probe: object,
    *,
    take_down: object,
    bring_back: object,
    failing: str,
    down_for: float,
) -> float:
    """Take a service down, check /readyz says so, bring it back; seconds until ingesting."""
    from tests.support.faults import Checkpoint

    assert isinstance(probe, Checkpoint)
    down_at = time.monotonic()
    await asyncio.to_thread(take_down)  # type: ignore[arg-type]
    # truthful means soon: a health probe is not a ping timeout
    body = await wait_readiness(serve.base_url, ready=False, failing=failing, timeout=5)
    print(f"{failing} down: /readyz 503 after {time.monotonic() - down_at:.2f} s: {body['error']}")
    await asyncio.sleep(max(0.0, down_for - (time.monotonic() - down_at)))
    await asyncio.to_thread(bring_back)  # type: ignore[arg-type]
    back_at = time.monotonic()
    committed = None
    while committed is None:
        committed = await probe.get()
    resumed = await probe.wait_beyond(committed, timeout=60)
    await wait_readiness(serve.base_url, ready=True, timeout=30)
    print(
        f"{failing} back: ingesting again after {resumed:.2f} s, ready after {time.monotonic() - back_at:.2f} s"
    )
    return resumed


async def test_postgres_stopped_mid_load_then_back(settings: Settings, tmp_path: Path) -> None:
    postgres = PostgresProcess(tmp_path / "pg", database="ledger")
    dsn = await asyncio.to_thread(postgres.start)
    ledger = settings.replace(database_url=dsn)
    serve = ServeProcess(ledger, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        running = Running(Load(ledger.nats_servers, ledger.subject_root, rate=400))
        await running.wait_count(300)
        async with checkpoint(dsn, ledger.stream) as probe:
            resumed = await outage(
                serve,
                probe,
                take_down=postgres.stop,
                bring_back=postgres.start,
                failing="database",
                down_for=5,
            )
        assert resumed < RESUME_WITHIN_S
        await running.wait_count(running.load.count + 300)
        await finish(ledger, running, serve)
    finally:
        serve.kill()
        await asyncio.to_thread(postgres.stop)


async def test_nats_stopped_then_frozen_mid_load(settings: Settings, tmp_path: Path) -> None:
    broker = NatsProcess(tmp_path / "nats")
    url = await asyncio.to_thread(broker.start)
    ledger = settings.replace(nats_url=url)
    assert ledger.database_url is not None
    serve = ServeProcess(ledger, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        running = Running(Load([url], ledger.subject_root, rate=400))
        await running.wait_count(300)
        async with checkpoint(ledger.database_url, ledger.stream) as probe:
            stopped = await outage(
                serve,
                probe,
                take_down=broker.stop,
                bring_back=broker.start,
                failing="broker",
                down_for=3,
            )
            await running.wait_count(running.load.count + 300)
            # SIGKILL: no goodbye to the pull request in flight (nats.py #504 territory)
            killed = await outage(
                serve,
                probe,
                take_down=broker.kill,
                bring_back=broker.start,
                failing="broker",
                down_for=3,
            )
            await running.wait_count(running.load.count + 300)
            # SIGSTOP: the server keeps its sockets open and answers nothing
            frozen = await outage(
                serve,
                probe,
                take_down=broker.pause,
                bring_back=broker.resume,
                failing="broker",
                down_for=5,
            )
        assert stopped < RESUME_WITHIN_S
        assert killed < RESUME_WITHIN_S
        assert frozen < RESUME_WITHIN_S
        await running.wait_count(running.load.count + 300)
        await finish(ledger, running, serve)
    finally:
        serve.kill()
        broker.resume()
        await asyncio.to_thread(broker.stop)
