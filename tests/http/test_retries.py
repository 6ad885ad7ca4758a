"""A retry is the normal thing a client does after a timeout: it must be safe. A write whose
eventId was judged before answers what the first answered (the ids of the logged event, the
row, or the same rejection); the same eventId with another body is 409 `event_id_reused`,
and nothing is written. One verdict per eventId, over NATS too, after the broker's
duplicate window as well."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client

from motionledger.domain.uuid7 import uuid7
from motionledger.settings import Settings
from tests.http.conftest import Api, ServeApi
from tests.support import events as ev


async def stream_messages(api: Api) -> int:
    assert api.res.client is not None
    info = await api.res.client.jetstream().stream_info(api.res.settings.stream)
    return int(info.state.messages)


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    events = await db.fetchval("SELECT count(*) FROM ledger.events")
    dead = await db.fetchval("SELECT count(*) FROM ledger.dead_letters")
    return events, dead


CAMERA = {"cameraId": "c1", "sourceType": "iphone", "role": "hero", "priorityWeight": 1.0,
          "isActive": True}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "result_key"),
    [
        ("session/start", {"sessionType": "music_demo"}, None),
        ("still-candidate", {"cameraId": "c1", "timestampMs": 5, "score": 0.5}, "s"),
        ("asset", {"assetType": "clip", "path": "/clips/1.mov"}, "s"),
    ],
)
async def test_a_retried_create_answers_the_ids_it_logged(
    api: Api, db: asyncpg.Connection, path: str, body: dict[str, Any], result_key: str | None
) -> None:
    if result_key is not None:  # these need a session
        session = (await api.post("session/start", {"sessionType": "music_demo"})).result
        body = {**body, "sessionId": session}
    event_id = uuid7()
    first = (await api.post(path, {**body, "eventId": event_id})).result
    before = await counts(db)
    messages = await stream_messages(api)
    again = await api.post(path, {**body, "eventId": event_id})
    assert (again.status, again.result) == (200, first)  # the id made the first time
    assert await counts(db) == before
    assert await stream_messages(api) == messages  # answered from the log: nothing sent
    if path == "session/start":
        assert (await api.get("session", sessionId=first)).status == 200


async def test_a_retried_upsert_answers_the_row(api: Api) -> None:
    session = (await api.post("session/start", {"sessionType": "music_demo"})).result
    event_id = uuid7()
    body = {**CAMERA, "sessionId": session, "eventId": event_id}
    first = (await api.post("camera/upsert", body)).result
    again = await api.post("camera/upsert", body)
    assert (again.status, again.result) == (200, first)


async def test_the_same_eventid_with_another_body_is_a_conflict_and_writes_nothing(
    api: Api, db: asyncpg.Connection
) -> None:
    event_id = uuid7()
    session = (
        await api.post("session/start", {"sessionType": "music_demo", "eventId": event_id})
    ).result
    before, messages = await counts(db), await stream_messages(api)
    other = await api.post(
        "session/start", {"sessionType": "photoshoot_review", "eventId": event_id}
    )
    assert other.status == 409
    assert other.error["code"] == "event_id_reused"
    # another kind of event under the same eventId: the same conflict
    cut = {"sessionId": session, "timestampMs": 1, "eventType": "cut", "eventId": event_id}
    assert (await api.post("event", cut)).error["code"] == "event_id_reused"
    assert await counts(db) == before
    assert await stream_messages(api) == messages


async def test_a_retry_of_a_rejected_write_is_the_same_rejection_however_the_state_moved(
    api: Api,
) -> None:
    event_id = uuid7()
    cut = {"sessionId": "LATER", "timestampMs": 1, "eventType": "cut", "eventId": event_id}
    first = await api.post("event", cut)
    assert (first.status, first.error["code"]) == (409, "unknown_session")
    await api.post("session/start", {"sessionType": "music_demo", "sessionId": "LATER"})
    again = await api.post("event", cut)
    assert again.status == 409
    assert again.error == first.error


async def test_a_batch_retried_answers_the_same_ids(api: Api, db: asyncpg.Connection) -> None:
    session = (await api.post("session/start", {"sessionType": "music_demo"})).result
    items = [{"timestampMs": t, "eventType": "bar_fire", "eventId": uuid7()} for t in range(3)]
    first = (await api.post("event/batch", {"sessionId": session, "events": items})).result
    before = await counts(db)
    again = await api.post("event/batch", {"sessionId": session, "events": items})
    assert (again.status, again.result) == (200, first)
    assert await counts(db) == before


async def test_two_writes_racing_with_one_eventid_and_two_bodies(api: Api) -> None:
    """Both may pass the look-up before either is logged; the broker keeps the first copy
    (its duplicate window) and acks the second as that one: the second must not be told
    its own body was logged."""
    session = (await api.post("session/start", {"sessionType": "music_demo"})).result
    for attempt in range(5):
        event_id = uuid7()
        bodies = [
            {"sessionId": session, "timestampMs": t, "eventType": "cut", "eventId": event_id}
            for t in (attempt * 10, attempt * 10 + 1)
        ]
        answers = await asyncio.gather(*(api.post("event", b) for b in bodies))
        statuses = sorted(a.status for a in answers)
        assert statuses == [200, 409], [a.body for a in answers]
        conflict = next(a for a in answers if a.status == 409)
        assert conflict.error["code"] == "event_id_reused"


async def test_still_update_for_a_still_nobody_made_is_409_unknown_still(
    api: Api, db: asyncpg.Connection
) -> None:
    before = await counts(db)
    answer = await api.post("still/update", {"stillCandidateId": "nope", "isFavorite": True})
    assert (answer.status, answer.error["code"]) == (409, "unknown_still")
    assert await counts(db) == before  # nothing published: no session names a subject


async def test_still_update_waits_for_a_still_still_in_the_stream(
    api: Api, nc: Client, settings: Settings, database_url: str
) -> None:
    """The still's creation was published (by a producer) right before, and the ledger has
    not judged it yet (its log is locked a moment): the update must wait for it, not be
    answered 'unknown'."""
    session = (await api.post("session/start", {"sessionType": "music_demo"})).result
    locker = await asyncpg.connect(database_url)
    try:
        await locker.execute("BEGIN; LOCK TABLE ledger.events IN ACCESS EXCLUSIVE MODE")
        await ev.publish_events(
            nc.jetstream(), settings.subject_root, [ev.still_created(session, "fresh-still")]
        )
        update = asyncio.ensure_future(
            api.post("still/update", {"stillCandidateId": "fresh-still", "isFavorite": True})
        )
        await asyncio.sleep(1.0)
        assert not update.done()  # waiting for the stream to be judged, not answered
    finally:
        await locker.execute("ROLLBACK")
        await locker.close()
    answer = await update
    assert answer.status == 200, answer.body
    assert answer.result["isFavorite"] is True


async def test_over_nats_an_eventid_is_judged_once_even_after_the_duplicate_window(
    serve_api: ServeApi, nc: Client, db: asyncpg.Connection, settings: Settings
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    async with serve_api(duplicate_window="1s"):
        cut = ev.director("S-LATE", 1)
        await ev.publish_events(js, root, [cut])
        await ev.publish_events(js, root, [ev.session_started("S-LATE")])
        await asyncio.sleep(1.5)  # past the broker's duplicate window: the ledger sees it
        await ev.publish_events(js, root, [cut])
        await asyncio.sleep(1.5)  # and again: another body under the same eventId
        reused = {**cut, "timestampMs": 2}
        await ev.publish_events(js, root, [reused], in_flight=1)
        for _ in range(200):
            if await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 3:
                break
            await asyncio.sleep(0.05)
        rows = await db.fetch("SELECT id, reason, repeat_of FROM ledger.dead_letters ORDER BY id")
    assert [r["reason"] for r in rows] == ["unknown_session", "unknown_session", "event_id_reused"]
    assert rows[1]["repeat_of"] == rows[0]["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM ledger.events WHERE event_id = $1", cut["eventId"])
        == 0
    )
