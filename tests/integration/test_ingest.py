"""Ingestion end to end: real NATS, real Postgres, the daemon in-process."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import msgspec
from nats.aio.client import Client

from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import running_ledger


async def wait_for_seq(db: asyncpg.Connection, stream: str, seq: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await db.fetchval(
            "SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1", stream
        )
        if got is not None and got >= seq:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"checkpoint did not reach {seq}")


async def test_mixed_events_logged_once_in_stream_order(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    batch = [ev.session_started("S1"), ev.camera_upserted("S1", "cam1")]
    batch += [ev.director("S1", cameraId="cam1") for _ in range(500)]
    batch += [ev.camera_state("S1", "cam1", isActive=False)]
    batch += [ev.still_created("S1", "still1"), ev.still_updated("S1", "still1", isFavorite=True)]
    batch += [ev.music("S1", 5, tempo=120.0), ev.asset("S1", "a1"), ev.session_completed("S1")]
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, root, batch)
        await wait_for_seq(db, settings.stream, seqs[-1])
    rows = await db.fetch(
        "SELECT position, event_id, stream_seq, type FROM ledger.events ORDER BY position"
    )
    assert [r["event_id"] for r in rows] == [e["eventId"] for e in batch]
    assert [r["position"] for r in rows] == list(range(1, len(batch) + 1))
    assert [r["stream_seq"] for r in rows] == seqs
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0


async def test_bad_bodies_are_dead_lettered_byte_for_byte(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    start = ev.session_started("S1")
    bodies = {
        b"not json at all": "invalid_json",
        b'{"type": "nope", "eventId": "x1", "sessionId": "S1"}': "unknown_type",
        b'{"eventId": "x2", "sessionId": "S1"}': "unknown_type",
        b'{"type": "director.event", "eventId": "x3", "sessionId": "S1", "timestampMs": 1, "eventType": "jump"}': "invalid_event",
        b'{"type": "director.event", "eventId": "x4", "sessionId": "S1", "timestampMs": 1, "eventType": "cut", "metadata": {"k": "a\\u0000b"}}': "unstorable",
        b"\xff\xfe binary": "invalid_json",
        b'{"type": "director.event", "eventId": "x5", "sessionId": "S9", "timestampMs": 1, "eventType": "cut"}': "subject_mismatch",
        b"[1, 2, 3]": "invalid_event",
        # a NUL in what the rejection says (the field's name) must not keep it out
        b'{"type": "session.started", "eventId": "x6", "sessionId": "S1", "sessionType": "music_demo", "bo\\u0000gus": 1}': "invalid_event",
    }
    async with running_ledger(settings.replace(max_event_bytes=4096)):
        await ev.publish_events(js, root, [start])
        for body in bodies:
            await ev.publish_raw(js, f"{root}.director.S1", body)
        huge = b'{"type": "director.event", "pad": "' + b"x" * 5000 + b'"}'
        last = await ev.publish_raw(js, f"{root}.director.S1", huge, msg_id="huge")
        await wait_for_seq(db, settings.stream, last)
    rows = await db.fetch("SELECT raw, reason, headers FROM ledger.dead_letters ORDER BY id")
    got = [(bytes(r["raw"]), r["reason"]) for r in rows]
    assert got == [*bodies.items(), (huge, "too_large")]
    assert msgspec.json.decode(rows[-1]["headers"]) == {"Nats-Msg-Id": ["huge"]}
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == 1


async def test_an_existing_stream_with_other_settings_is_reported_not_fatal(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    from nats.js.api import StreamConfig
    from structlog.testing import capture_logs

    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name=settings.stream, subjects=[f"{settings.subject_root}.>"], max_age=60.0)
    )
    with capture_logs() as logs:
        async with running_ledger(settings):
            seqs = await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
            await wait_for_seq(db, settings.stream, seqs[-1])
    differ = [entry for entry in logs if entry["event"] == "stream_settings_kept"]
    assert differ, [entry["event"] for entry in logs]
    assert "max_age" in differ[0]["differences"]
    # reported, never rewritten: the stream is its operator's (see test_stream_changes)
    info = await js.stream_info(settings.stream)
    assert info.config.max_age == 60.0
    assert not info.config.deny_delete
    assert not info.config.deny_purge


async def test_a_message_that_cannot_even_be_a_dead_letter_is_skipped_loudly(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """A CHECK constraint on this test's database plays a PostgreSQL refusing the dead letter."""
    from structlog.testing import capture_logs

    from motionledger import metrics

    await db.execute(
        "ALTER TABLE ledger.dead_letters ADD CONSTRAINT test_refuses CHECK (raw <> 'poison'::bytea)"
    )
    js = nc.jetstream()
    before = metrics.UNSTORABLE._value.get()
    with capture_logs() as logs:
        async with running_ledger(settings):
            await ev.publish_events(js, settings.subject_root, [ev.session_started("S1")])
            await ev.publish_raw(js, f"{settings.subject_root}.director.S1", b"poison")
            await ev.publish_raw(js, f"{settings.subject_root}.director.S1", b"not json either")
            seqs = await ev.publish_events(js, settings.subject_root, [ev.director("S1")])
            await wait_for_seq(db, settings.stream, seqs[-1])
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == 2
    assert [bytes(r[0]) for r in await db.fetch("SELECT raw FROM ledger.dead_letters")] == [
        b"not json either"
    ]
    assert metrics.UNSTORABLE._value.get() == before + 1
    skipped = [entry for entry in logs if entry["event"] == "message_unstorable_skipped"]
    assert [entry["stream_seq"] for entry in skipped] == [2]


async def test_a_subject_that_is_not_utf8_is_dead_lettered_not_fatal(
    settings: Settings, db: asyncpg.Connection, nc: Client, nats_url: str
) -> None:
    """NATS does not require subjects to be UTF-8; a producer in another language may send
    one that is not. It must neither stop the client's reader nor block the lane."""
    js = nc.jetstream()
    root = settings.subject_root
    async with running_ledger(settings):
        await ev.publish_events(js, root, [ev.session_started("S1")])
        host, port = nats_url.removeprefix("nats://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        await reader.readline()  # INFO
        body = b'{"not": "checked"}'
        subject = f"{root}.director.".encode() + b"\xff\xfe"
        writer.write(b'CONNECT {"verbose":false}\r\nPUB ' + subject + b" %d\r\n" % len(body))
        writer.write(body + b"\r\nPING\r\n")
        await writer.drain()
        await reader.readline()  # PONG: the broker has it
        writer.close()
        seqs = await ev.publish_events(js, root, [ev.director("S1")])
        await wait_for_seq(db, settings.stream, seqs[-1])
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == 2
    letter = await db.fetchrow("SELECT subject, raw, reason FROM ledger.dead_letters")
    assert bytes(letter["raw"]) == body
    assert letter["subject"] == f"{root}.director.\ufffd\ufffd"
