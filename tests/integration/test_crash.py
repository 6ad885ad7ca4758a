"""The daemon killed with SIGKILL mid-batch and right after a commit: nothing lost, nothing
twice, stream order kept, and judging after the restart knows everything from before."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import msgspec
from nats.aio.client import Client

from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import ServeProcess, running_ledger


async def checkpoint(db: asyncpg.Connection, stream: str) -> int:
    return (
        await db.fetchval("SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1", stream)
        or 0
    )


async def wait_checkpoint(
    db: asyncpg.Connection, stream: str, seq: int, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while await checkpoint(db, stream) < seq:
        if time.monotonic() > deadline:
            raise TimeoutError(f"checkpoint stuck at {await checkpoint(db, stream)} < {seq}")
        await asyncio.sleep(0.02)


async def assert_exactly_once_in_order(db: asyncpg.Connection, expected_ids: list[str]) -> None:
    rows = await db.fetch(
        "SELECT position, event_id, stream_seq FROM ledger.events ORDER BY position"
    )
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1)), "positions have gaps"
    seqs = [r["stream_seq"] for r in rows]
    assert seqs == sorted(seqs), "log order differs from stream order"
    assert [r["event_id"] for r in rows] == expected_ids


async def test_sigkill_mid_batch_and_after_commit(
    settings: Settings, db: asyncpg.Connection, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    expected: list[str] = []

    async def publish(events: list[dict]) -> int:
        expected.extend(e["eventId"] for e in events)
        return (await ev.publish_events(js, root, events))[-1]

    serve = ServeProcess(settings, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        last = await publish([ev.session_started("S1"), ev.camera_upserted("S1", "c1")])
        await wait_checkpoint(db, settings.stream, last)

        # 1. mid-batch: hold the checkpoint row so the next batch blocks inside its
        #    transaction (its rows already COPYed, not committed), then kill the daemon.
        blocker = await asyncpg.connect(settings.database_url)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM ledger.ingest_state FOR UPDATE")
        last = await publish([ev.director("S1", cameraId="c1") for _ in range(300)])
        deadline = time.monotonic() + 10
        while not await db.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE NOT l.granted AND a.datname = current_database()"
        ):
            assert time.monotonic() < deadline, "the batch never reached its checkpoint update"
            await asyncio.sleep(0.02)
        serve.kill()
        await tx.rollback()
        await blocker.close()
        # The batch's last statement (checkpoint + COMMIT) was already with the server, so it
        # may go in after its sender died: all of it or none, never a part.
        await asyncio.sleep(0.2)
        logged = await db.fetchval("SELECT count(*) FROM ledger.events")
        assert await checkpoint(db, settings.stream) == logged < 302

        # 2. restart: resumes from the committed checkpoint, judges with the old state
        serve = ServeProcess(settings, tmp_path / "serve2.log").start()
        await serve.wait_ready()
        last = await publish([ev.camera_state("S1", "c1", isActive=False)])
        await wait_checkpoint(db, settings.stream, last)

        # 3. right after a commit: kill as soon as the checkpoint moves, with more in flight
        more = [ev.director("S1") for _ in range(2000)]
        publishing = asyncio.ensure_future(publish(more))
        first = await checkpoint(db, settings.stream)
        while await checkpoint(db, settings.stream) == first:
            await asyncio.sleep(0.001)
        serve.kill()
        last = await publishing
        serve = ServeProcess(settings, tmp_path / "serve3.log").start()
        await serve.wait_ready()
        await wait_checkpoint(db, settings.stream, last)
        assert serve.terminate() == 0
    finally:
        serve.kill()

    await assert_exactly_once_in_order(db, expected)
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0


async def test_judge_state_survives_restart_without_memory(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """After a restart the judge knows sessions, cameras, stills, assets and event ids from
    Postgres alone — including duplicates of events beyond any in-memory cache."""
    js = nc.jetstream()
    root = settings.subject_root
    first = [
        ev.session_started("S1"),
        ev.camera_upserted("S1", "c1"),
        ev.still_created("S1", "st1"),
        ev.asset("S1", "a1"),
        ev.director("S1"),
    ]
    async with running_ledger(settings):
        last = await ev.publish_events(js, root, first)
        await wait_checkpoint(db, settings.stream, last[-1])

    replayed = dict(first[4])  # same eventId, beyond the broker's duplicate window (new msg id)
    second = [
        ev.session_started("S1"),  # session_exists
        ev.camera_state("S1", "c1", isActive=False),  # accepted: camera known from the log
        ev.camera_state("S1", "c2"),  # unknown_camera
        ev.still_updated("S1", "st1", isFavorite=True),  # accepted
        ev.still_created("S1", "st1"),  # still_exists
        ev.asset("S1", "a1"),  # asset_exists
        ev.director("S2"),  # unknown_session
    ]
    async with running_ledger(settings):
        for event in second:
            await ev.publish_events(js, root, [event])
        seq = await ev.publish_raw(
            js, ev.subject_of(root, replayed), msgspec.json.encode(replayed), msg_id="retry-1"
        )
        started_dup = dict(first[0])
        seq = await ev.publish_raw(
            js, ev.subject_of(root, started_dup), msgspec.json.encode(started_dup), msg_id="retry-2"
        )
        await wait_checkpoint(db, settings.stream, seq)

    reasons = [
        r["reason"] for r in await db.fetch("SELECT reason FROM ledger.dead_letters ORDER BY id")
    ]
    assert reasons == [
        "session_exists",
        "unknown_camera",
        "still_exists",
        "asset_exists",
        "unknown_session",
    ]
    logged = [
        r["event_id"]
        for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")
    ]
    assert logged == [e["eventId"] for e in first] + [second[1]["eventId"], second[3]["eventId"]]
    assert await db.fetchval("SELECT duplicates FROM ledger.ingest_state") == 2


async def test_graceful_shutdown_drains_and_exits_zero(
    settings: Settings, db: asyncpg.Connection, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    serve = ServeProcess(settings, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        events = [ev.director("S1") for _ in range(3000)]
        publishing = asyncio.ensure_future(ev.publish_events(js, settings.subject_root, events))
        await asyncio.sleep(0.05)
        assert await asyncio.to_thread(serve.terminate) == 0
        seqs = await publishing
        committed = await checkpoint(db, settings.stream)
        logged = await db.fetchval("SELECT count(*) FROM ledger.events")
        # everything up to the checkpoint is in; nothing beyond it was half-written
        assert logged == committed <= seqs[-1]
        assert "serve_stopped" in serve.tail()
    finally:
        serve.kill()
    async with running_ledger(settings):
        await wait_checkpoint(db, settings.stream, seqs[-1])
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == 3001
