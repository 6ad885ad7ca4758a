"""The producer against a real broker and a running ledger: retries are no-ops, and a
broker restart or pause in the middle of publishing loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.domain.events import (
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    Event,
    SessionStarted,
    StillCreated,
    StillUpdated,
)
from motionledger.producer import Producer, connect, make_event
from motionledger.settings import Settings
from tests.support.ledger import running_ledger


def shoot(session: str, count: int) -> list[Event]:
    """A session, cameras, then director events with state changes and stills among them."""
    events: list[Event] = [
        make_event(SessionStarted, session_id=session, session_type="photoshoot_performance")
    ]
    for cam in ("cam1", "cam2"):
        events.append(
            make_event(
                CameraUpserted,
                session_id=session,
                camera_id=cam,
                source_type="iphone",
                role="hero",
                priority_weight=1.0,
                is_active=True,
            )
        )
    for i in range(count):
        events.append(
            make_event(
                DirectorEvent,
                session_id=session,
                timestamp_ms=i,
                event_type="cut",
                camera_id="cam1",
            )
        )
        if i % 500 == 250:
            events.append(
                make_event(
                    CameraStateChanged, session_id=session, camera_id="cam2", is_active=i % 2 == 0
                )
            )
            still = f"{session}-still{i}"
            events.append(
                make_event(
                    StillCreated,
                    session_id=session,
                    still_candidate_id=still,
                    camera_id="cam1",
                    timestamp_ms=i,
                    score=0.5,
                )
            )
            events.append(
                make_event(
                    StillUpdated, session_id=session, still_candidate_id=still, is_favorite=True
                )
            )
    return events


async def wait_logged(db: asyncpg.Connection, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = await db.fetchval("SELECT count(*) FROM ledger.events")
        dead = await db.fetchval("SELECT count(*) FROM ledger.dead_letters")
        if logged + dead >= count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the log did not reach {count} events")


async def assert_logged_exactly_once(db: asyncpg.Connection, events: list[Event]) -> None:
    await wait_logged(db, len(events))
    rows = await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")
    logged = [r["event_id"] for r in rows]
    assert sorted(logged) == sorted(e.event_id for e in events)
    reasons = await db.fetch("SELECT reason, detail FROM ledger.dead_letters")
    assert [tuple(r) for r in reasons] == []
    # the fenced (state-changing) events landed in the order they were published
    fenced = [e.event_id for e in events if not isinstance(e, DirectorEvent)]
    assert [i for i in logged if i in set(fenced)] == fenced


PATHS = {
    "public-api": {},
    "fast-protocol-writes": {"fast_path": True},
    "fast-nats-py-publish": {"fast_path": True, "raw_writes": False},
}


def path_options(path: str) -> dict[str, object]:
    return {k: v for k, v in PATHS[path].items() if k != "raw_writes"}


def set_path(producer: Producer, path: str) -> None:
    """The fast path writes protocol commands; its fallback is nats-py's plain publish."""
    assert producer.fast_path == (path != "public-api")
    if PATHS[path].get("raw_writes") is False:
        assert producer._fast is not None
        assert producer._fast._raw
        producer._fast._raw = False


@pytest.mark.parametrize("path", list(PATHS))
async def test_retried_publishes_are_no_ops(
    settings: Settings, db: asyncpg.Connection, path: str
) -> None:
    events = shoot("S1", 3000)
    async with running_ledger(settings):
        # an ack timeout far below a round trip under load: most publishes are sent twice
        async with connect(
            settings.nats_url or "",
            subject_root=settings.subject_root,
            ack_timeout=0.001,
            **path_options(path),
        ) as producer:
            set_path(producer, path)
            acks = await producer.publish_many(events)
            assert producer.stats.resent > 0
        assert len({a.seq for a in acks}) == len(events)
        # a producer that crashed and starts over publishes everything again: all no-ops,
        # acknowledged as duplicates it cannot vouch for (another process sent the first)
        async with connect(
            settings.nats_url or "", subject_root=settings.subject_root, **path_options(path)
        ) as again:
            repeat = await again.publish_many(events[:500])
        assert all(a.duplicate and a.unverified for a in repeat)
        assert [a.seq for a in repeat] == [a.seq for a in acks[:500]]
        await assert_logged_exactly_once(db, events)


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[NatsProcess]:
    server = NatsProcess(tmp_path / "nats")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def publish_with_a_fault(
    settings: Settings, events: list[Event], fault: str, server: NatsProcess, path: str
) -> None:
    async with connect(
        server.url,
        subject_root=settings.subject_root,
        ack_timeout=0.3,
        give_up_after=60,
        **path_options(path),
    ) as producer:
        publishing = asyncio.ensure_future(producer.publish_many(events))
        while producer.stats.published < len(events) // 4:
            assert not publishing.done(), publishing
            await asyncio.sleep(0.005)
        if fault == "restart":
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
        else:
            server.pause()
            await asyncio.sleep(1.0)
            server.resume()
        await asyncio.wait_for(publishing, 90)
        assert producer.stats.resent > 0


@pytest.mark.parametrize("path", ["public-api", "fast-protocol-writes"])
@pytest.mark.parametrize("fault", ["restart", "pause"])
async def test_broker_fault_mid_publish_loses_nothing(
    settings: Settings, db: asyncpg.Connection, private_nats: NatsProcess, fault: str, path: str
) -> None:
    settings = settings.replace(nats_url=private_nats.url)
    events = shoot("S1", 12_000)
    async with running_ledger(settings):
        await publish_with_a_fault(settings, events, fault, private_nats, path)
        await assert_logged_exactly_once(db, events)
