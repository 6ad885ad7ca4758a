"""When the broker's stream is not what the ledger left: re-created, tail lost, a hole."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from motionledger import metrics
from motionledger.adapters.nats import broker
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


# -- a stream an operator made is theirs ---------------------------------------------------
def _kept(config: StreamConfig) -> dict[str, Any]:
    """What an operator chose: everything but the subjects."""
    return {k: v for k, v in config.as_dict().items() if k != "subjects"}


async def test_an_existing_stream_keeps_its_settings_and_gains_only_the_subject(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    other = f"audit{settings.subject_root}.>"
    made = await js.add_stream(
        StreamConfig(
            name=settings.stream,
            description="made by the studio's NATS operator",
            subjects=[other],  # the ledger's subjects missing: it cannot work without them
            max_age=600.0,  # differs from the ledger's default: kept
            duplicate_window=5.0,  # likewise
            max_msgs_per_subject=1000,  # a setting the ledger does not even know about
        )
    )
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        await wait_for_seq(db, settings.stream, seqs[-1])
    after = await js.stream_info(settings.stream)
    assert sorted(after.config.subjects or []) == sorted([other, f"{settings.subject_root}.>"])
    assert _kept(after.config) == _kept(made.config)


async def test_a_stream_that_already_fits_is_left_exactly_as_it_is(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    made = await js.add_stream(
        StreamConfig(
            name=settings.stream,
            subjects=[f"{settings.subject_root}.>"],
            max_age=900.0,
            deny_delete=False,
            num_replicas=1,
        )
    )
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        await wait_for_seq(db, settings.stream, seqs[-1])
    after = await js.stream_info(settings.stream)
    assert after.config.as_dict() == made.config.as_dict()


async def test_an_unmanaged_stream_is_waited_for_and_never_touched(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    settings = settings.replace(stream_manage=False)
    with pytest.raises(broker.StreamMissing):
        await broker.ensure_stream(js, settings)
    restarts = metrics.INGEST_RESTARTS.labels("broker")
    before = restarts._value.get()
    # the daemon starts, and its ingest says why it waits and tries again (`ingest_restart`)
    waiting = asyncio.ensure_future(_ledger_once_stream_exists(settings, db, nc))
    while restarts._value.get() < before + 1:
        assert not waiting.done()
        await asyncio.sleep(0.05)
    with pytest.raises(NotFoundError):
        await js.stream_info(settings.stream)
    made = await js.add_stream(
        StreamConfig(name=settings.stream, subjects=["elsewhere.>", f"{settings.subject_root}.>"])
    )
    await asyncio.wait_for(waiting, 60)
    after = await js.stream_info(settings.stream)
    assert after.config.as_dict() == made.config.as_dict()


async def _ledger_once_stream_exists(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    async with running_ledger(settings, timeout=60):
        js = nc.jetstream()
        seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        await wait_for_seq(db, settings.stream, seqs[-1])
