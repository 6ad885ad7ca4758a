"""When the broker's stream is not what the ledger left: re-created, tail lost, a hole."""

from __future__ import annotations

from typing import Any

import asyncpg
from nats.aio.client import Client
from nats.js.api import StreamConfig

from motionledger import metrics
from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import running_ledger

from .test_ingest import wait_for_seq


async def logged(db: asyncpg.Connection) -> list[Any]:
    rows = await db.fetch(
        "SELECT position, event_id, stream_epoch, stream_seq FROM ledger.events ORDER BY position"
    )
    return [tuple(r) for r in rows]


async def test_a_recreated_stream_starts_a_new_epoch(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    first = [ev.session_started("S1"), ev.director("S1")]
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, first)
        await wait_for_seq(db, settings.stream, seqs[-1])
    await js.delete_stream(settings.stream)  # gone, and made again: sequences start over
    second = [ev.director("S1"), ev.director("S1")]
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, second)
        await wait_for_seq(db, settings.stream, seqs[-1])
    rows = await logged(db)
    assert [r[1] for r in rows] == [e["eventId"] for e in first + second]
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert [(r[2], r[3]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]


async def test_a_stream_that_lost_its_tail_is_followed_not_skipped(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """A broker that crashed before its disk sync comes back with fewer messages than the
    ledger committed; what it is given next reuses those sequence numbers. (Played here by
    moving the ledger's checkpoint past the stream's end.)"""
    js = nc.jetstream()
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        await wait_for_seq(db, settings.stream, seqs[-1])
    await db.execute("UPDATE ledger.ingest_state SET stream_seq = stream_seq + 50")
    later = [ev.director("S1"), ev.director("S1")]
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, later)
        state = await db.fetchrow("SELECT epoch, stream_seq FROM ledger.ingest_state")
        assert state["epoch"] == 2
        await wait_for_seq(db, settings.stream, seqs[-1])
    rows = await logged(db)
    assert [r[1] for r in rows][1:] == [e["eventId"] for e in later]
    assert [(r[2], r[3]) for r in rows][1:] == [(2, 2), (2, 3)]


async def test_messages_the_broker_no_longer_has_are_reported_and_passed(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=settings.stream, subjects=[f"{settings.subject_root}.>"]))
    batch = [ev.session_started("S1"), ev.director("S1"), ev.director("S1"), ev.director("S1")]
    seqs = await ev.publish_events(js, settings.subject_root, batch)
    await js.delete_msg(settings.stream, seqs[1])  # a hole in the middle
    before = metrics.STREAM_GAPS._value.get()
    async with running_ledger(settings):
        await wait_for_seq(db, settings.stream, seqs[-1])
    rows = await logged(db)
    assert [r[1] for r in rows] == [batch[0]["eventId"], batch[2]["eventId"], batch[3]["eventId"]]
    assert [r[0] for r in rows] == [1, 2, 3]  # positions stay gap-free
    assert metrics.STREAM_GAPS._value.get() == before + 1
