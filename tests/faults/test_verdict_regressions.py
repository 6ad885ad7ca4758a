"""Regressions found by review, each a way an event could be lost, given two verdicts, or
wedge ingestion: kept as explicit cases beside the property tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from motionledger.domain.uuid7 import uuid7
from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import running_ledger


async def committed_past(
    db: asyncpg.Connection, stream: str, seq: int, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await db.fetchval(
            "SELECT stream_seq FROM ledger.ingest_state WHERE stream=$1", stream
        )
        if got is not None and got >= seq:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"ingest did not commit past {seq}")


async def test_a_database_that_cannot_take_writes_for_a_moment_loses_nothing(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """A full disk (SQLSTATE 53100) is the server's trouble, not the data's: the batch is
    retried, never dead-lettered as refused, never skipped."""
    await db.execute(
        """
        CREATE TABLE public.disk_full (on_ boolean);
        CREATE FUNCTION public.maybe_full() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM public.disk_full) THEN
            RAISE EXCEPTION 'could not extend file: No space left on device'
                  USING ERRCODE = '53100';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER full_e BEFORE INSERT ON ledger.events
            FOR EACH ROW EXECUTE FUNCTION public.maybe_full();
        CREATE TRIGGER full_d BEFORE INSERT ON ledger.dead_letters
            FOR EACH ROW EXECUTE FUNCTION public.maybe_full();
        """
    )
    js = nc.jetstream()
    root = settings.subject_root
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, root, [ev.session_started("S1")])
        await committed_past(db, settings.stream, seqs[-1])
        await db.execute("INSERT INTO public.disk_full VALUES (true)")
        during = [ev.director("S1", t) for t in range(5)] + [ev.director("S9")]
        await ev.publish_events(js, root, during)
        await asyncio.sleep(2)  # several failed attempts
        await db.execute("DELETE FROM public.disk_full")
        seqs = await ev.publish_events(js, root, [ev.director("S1", 9)])
        await committed_past(db, settings.stream, seqs[-1])
    logged = {r[0] for r in await db.fetch("SELECT event_id FROM ledger.events")}
    dead = await db.fetch("SELECT event_id, reason FROM ledger.dead_letters")
    assert all(e["eventId"] in logged for e in during[:5])
    assert [(r["event_id"], r["reason"]) for r in dead] == [
        (during[5]["eventId"], "unknown_session")
    ]


def _publishable(root: str, event: dict[str, Any], subject: str | None = None) -> tuple[str, bytes]:
    return subject or ev.subject_of(root, event), msgspec.json.encode(event)


@pytest.mark.parametrize("fillers", [2, 80])  # one-statement commit / COPY commit
@pytest.mark.parametrize("first", ["wrong subject", "invalid body"])
async def test_a_copy_rejected_before_judging_holds_the_copies_after_it(
    settings: Settings, db: asyncpg.Connection, nc: Client, fillers: int, first: str
) -> None:
    """One batch: the eventId's first copy is rejected before the judge sees it (wrong
    subject, or not a valid event), a later valid copy follows. The first verdict holds —
    the later copy is not logged, and ingestion is not wedged on the guard."""
    root = settings.subject_root
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=settings.stream, subjects=[f"{root}.>"]))
    start = ev.session_started("S1")
    cut = ev.director("S1", 5)
    items = [_publishable(root, start)]
    items += [_publishable(root, ev.director("S1", t)) for t in range(fillers)]
    if first == "wrong subject":
        items.append(_publishable(root, cut, f"{root}.director.S2"))
    else:
        items.append(_publishable(root, {**cut, "eventType": "bogus"}))
    items.append(_publishable(root, cut))
    last = 0
    for number, (subject, body) in enumerate(items):
        last = (await js.publish(subject, body, headers={"Nats-Msg-Id": f"m{number}"})).seq
    async with running_ledger(settings):  # everything waits in the stream: one batch
        await committed_past(db, settings.stream, last)
    assert (
        await db.fetchval("SELECT count(*) FROM ledger.events WHERE event_id=$1", cut["eventId"])
        == 0
    )
    dead = await db.fetch(
        "SELECT reason, repeat_of FROM ledger.dead_letters WHERE event_id=$1 ORDER BY id",
        cut["eventId"],
    )
    if first == "wrong subject":  # the same body again: the same rejection
        assert [d["reason"] for d in dead] == ["subject_mismatch", "subject_mismatch"]
    else:  # another body under the eventId: a conflict
        assert [d["reason"] for d in dead] == ["invalid_event", "event_id_reused"]
    binding = await db.fetch("SELECT id FROM ledger.binding_rejections($1)", [cut["eventId"]])
    assert len(binding) == 1


async def test_a_write_whose_eventid_another_copy_took_meanwhile_is_a_conflict(
    settings: Settings, db: asyncpg.Connection, nc: Client, database_url: str
) -> None:
    """An older copy (another body, past the broker's duplicate window) is published while
    commits wait; the HTTP write's own copy is dead-lettered `event_id_reused`: it must be
    answered 409, not 200 with the other copy's position."""
    js = nc.jetstream()
    root = settings.subject_root
    async with running_ledger(settings):
        base = f"http://{settings.http_host}:{settings.http_port}/production"
        async with httpx.AsyncClient(timeout=20) as http:
            started = await http.post(
                f"{base}/session/start", json={"sessionType": "music_demo", "sessionId": "S1"}
            )
            assert started.status_code == 200, started.text
            event_id = uuid7()
            older = {"type": "director.event", "eventId": event_id, "sessionId": "S1",
                     "timestampMs": 1, "eventType": "cut"}  # fmt: skip
            locker = await asyncpg.connect(database_url)
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE ledger.events IN EXCLUSIVE MODE")
            await js.publish(
                f"{root}.director.S1",
                msgspec.json.encode(older),
                headers={"Nats-Msg-Id": "older-copy"},
            )

            async def release() -> None:
                await asyncio.sleep(1.0)
                await transaction.rollback()
                await locker.close()

            releasing = asyncio.ensure_future(release())
            answer = await http.post(
                f"{base}/event",
                json={
                    "eventId": event_id,
                    "sessionId": "S1",
                    "timestampMs": 999,
                    "eventType": "hold",
                },
            )
            await releasing
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "event_id_reused"


async def test_no_stall_is_reported_after_a_restart_on_an_idle_stream(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
        await committed_past(db, settings.stream, seqs[-1])
    async with running_ledger(settings) as runtime:
        assert runtime.ingestor is not None
        for _ in range(3):  # a few of the watch's checks
            report = await runtime.ingestor._stall.check()
            assert report.seconds == 0, report
            await asyncio.sleep(0.2)
