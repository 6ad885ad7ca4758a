"""The twelve write routes: answers after the verdict, read-your-writes, and every error."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import msgspec
import pytest

from motionledger.domain.rows import ROWS
from tests.http.conftest import Api, ServeApi


def row(name: str, value: object) -> msgspec.Struct:
    """A result decoded strictly as its table's row Struct (no field missing or extra)."""
    decoded: msgspec.Struct = msgspec.convert(value, ROWS[name], strict=True)
    return decoded


def is_uuid7(value: str) -> bool:
    return uuid.UUID(value).version == 7


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    events = await db.fetchval("SELECT count(*) FROM ledger.events")
    dead = await db.fetchval("SELECT count(*) FROM ledger.dead_letters")
    return events, dead


async def test_every_write_is_visible_to_the_next_read(api: Api) -> None:
    session = (await api.post("session/start", {"sessionType": "photoshoot_performance"})).result
    assert is_uuid7(session)  # made by the server
    assert (await api.get("session", sessionId=session)).result["status"] == "setup"

    camera = (
        await api.post(
            "camera/upsert",
            {
                "sessionId": session,
                "cameraId": "cam-a",
                "sourceType": "iphone",
                "role": "hero",
                "priorityWeight": 0.5,
                "isActive": True,
                "deviceName": "front",
            },
        )
    ).result
    assert row("cameras", camera).is_active is True  # type: ignore[attr-defined]
    assert camera["_id"] == f"{session}:cam-a"
    assert camera["_creationTime"] == camera["createdAt"]
    state = (
        await api.post(
            "camera/state", {"sessionId": session, "cameraId": "cam-a", "isActive": False}
        )
    ).result
    assert state["isActive"] is False
    assert state["deviceName"] == "front"  # absent: left as it was
    assert state["updatedAt"] >= camera["updatedAt"]
    assert (await api.get("cameras", sessionId=session)).result == [state]

    cut = (
        await api.post(
            "event",
            {"sessionId": session, "timestampMs": 1000, "eventType": "cut", "cameraId": "cam-a"},
        )
    ).result
    assert is_uuid7(cut)
    page = (await api.get("events", sessionId=session)).result
    assert [e["eventId"] for e in page["page"]] == [cut]

    batch = (
        await api.post(
            "event/batch",
            {
                "sessionId": session,
                "events": [
                    {"timestampMs": 1001, "eventType": "hold"},
                    {"timestampMs": 1002, "eventType": "release", "eventId": "mine-1"},
                    {"timestampMs": 1003, "eventType": "bar_fire"},
                ],
            },
        )
    ).result
    assert batch[1] == "mine-1"
    assert len(batch) == 3
    hero = (
        await api.post("hero-pose", {"sessionId": session, "timestampMs": 1004, "score": 0.9})
    ).result
    page = (await api.get("events", sessionId=session)).result["page"]
    assert [e["eventId"] for e in page] == [cut, *batch, hero]
    assert page[-1]["eventType"] == "hero_pose_marker"
    assert page[-1]["score"] == 0.9

    moment = (
        await api.post(
            "music-moment",
            {"sessionId": session, "timestampMs": 1002, "tempo": 124, "section": "drop"},
        )
    ).result
    (music,) = (await api.get("music-moments", sessionId=session)).result
    assert music["eventId"] == moment
    assert music["tempo"] == 124.0

    still = (
        await api.post(
            "still-candidate",
            {"sessionId": session, "cameraId": "cam-a", "timestampMs": 1004, "score": 0.7},
        )
    ).result
    assert is_uuid7(still)
    updated = (
        await api.post("still/update", {"stillCandidateId": still, "isFavorite": True})
    ).result
    assert row("still_candidates", updated).session_id == session  # type: ignore[attr-defined]
    assert updated["isFavorite"] is True
    assert updated["selectedForEdit"] is False
    assert (await api.get("stills", sessionId=session, favoritesOnly=True)).result == [updated]

    asset = (
        await api.post("asset", {"sessionId": session, "assetType": "clip", "path": "/c.mp4"})
    ).result
    assert [a["assetId"] for a in (await api.get("assets", sessionId=session)).result] == [asset]

    assert (
        await api.post("session/update", {"sessionId": session, "status": "rolling"})
    ).result == session
    assert (await api.get("session/active")).result["sessionId"] == session
    assert (await api.post("session/complete", {"sessionId": session})).result == session
    done = (await api.get("session", sessionId=session)).result
    assert done["status"] == "complete"
    assert done["completedAt"] == done["updatedAt"]
    assert (await api.get("session/active")).result is None


BAD_BODIES = [
    ("session/start", {"sessionType": "wedding"}, "$.sessionType"),
    ("session/start", {"sessionType": "music_demo", "sessionId": "has space"}, "$.sessionId"),
    ("session/start", {"sessionType": "music_demo", "status": "complete"}, "$.status"),
    ("session/start", {"sessionType": "music_demo", "type": "session.started"}, "type"),
    ("session/update", {"sessionId": "S", "status": "done"}, "$.status"),
    ("session/complete", {"sessionId": "S", "status": "rolling"}, "$.status"),
    (
        "camera/upsert",
        {
            "sessionId": "S",
            "cameraId": "c",
            "sourceType": "iphone",
            "role": "hero",
            "priorityWeight": 1,
            "isActive": "true",
        },
        "$.isActive",
    ),
    ("camera/upsert", {"sessionId": "S", "cameraId": "c", "sourceType": "x"}, "role"),
    (
        "camera/state",
        {"sessionId": "S", "cameraId": "c", "priorityWeight": "1.5"},
        "priorityWeight",
    ),
    ("event", {"sessionId": "S", "timestampMs": 1, "eventType": "jump"}, "$.eventType"),
    ("event", {"sessionId": "S", "timestampMs": -1, "eventType": "cut"}, "$.timestampMs"),
    ("event", {"sessionId": "S", "eventType": "cut"}, "timestampMs"),
    ("hero-pose", {"sessionId": "S", "timestampMs": 1, "eventType": "cut"}, "$.eventType"),
    ("still-candidate", {"sessionId": "S", "cameraId": "c", "timestampMs": 1}, "score"),
    ("still/update", {"stillCandidateId": "st", "isFavorite": 1}, "$.isFavorite"),
    ("music-moment", {"sessionId": "S", "timestampMs": 1, "tempo": "fast"}, "$.tempo"),
    ("asset", {"sessionId": "S", "assetType": "", "path": "/p"}, "$.assetType"),
    ("asset", {"sessionId": "S", "assetType": "clip"}, "path"),
    ("event/batch", {"sessionId": "S", "events": []}, "$.events"),
    (
        "event/batch",
        {"sessionId": "S", "events": [{"timestampMs": 1, "eventType": "cut"}, {"timestampMs": 2}]},
        "eventType",
    ),
    (
        "event/batch",
        # the batch names the session once: its items carry none (the schema says so)
        {"sessionId": "S", "events": [{"timestampMs": 1, "eventType": "cut", "sessionId": "S"}]},
        "sessionId",
    ),
]


async def test_schema_failures_are_400_and_nothing_is_published(
    api: Api, db: asyncpg.Connection
) -> None:
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    before = await counts(db)
    for path, body, where in BAD_BODIES:
        answer = await api.post(path, body)
        assert answer.status == 400, (path, body, answer.body)
        assert answer.error["code"] == "invalid_event"
        assert where in answer.error["message"], (path, answer.error)
    for raw in [b"not json", b"[1, 2]", b"", b'{"sessionId": "S", "timestampMs": 1,']:
        answer = await api.post("event", raw=raw)
        assert answer.status == 400, raw
        assert answer.error["code"] in ("invalid_json", "invalid_event")
    await asyncio.sleep(0.2)  # anything published would be judged by now
    assert await counts(db) == before
    info = await api.res.client.jetstream().stream_info(api.res.settings.stream)  # type: ignore[union-attr]
    assert info.state.messages == 1  # the session start only


async def test_state_rejections_are_409_with_the_judges_reason(
    api: Api, db: asyncpg.Connection
) -> None:
    start = {"sessionId": "S", "sessionType": "music_demo"}
    assert (await api.post("session/start", start)).status == 200
    cases = [
        ("session/start", start, "session_exists"),
        ("event", {"sessionId": "nobody", "timestampMs": 1, "eventType": "cut"}, "unknown_session"),
        ("camera/state", {"sessionId": "S", "cameraId": "ghost"}, "unknown_camera"),
        ("still/update", {"sessionId": "S", "stillCandidateId": "ghost"}, "unknown_still"),
        (
            "event/batch",
            {"sessionId": "nobody", "events": [{"timestampMs": 1, "eventType": "cut"}] * 2},
            "unknown_session",
        ),
    ]
    still = {
        "sessionId": "S",
        "stillCandidateId": "st",
        "cameraId": "c",
        "timestampMs": 1,
        "score": 1,
    }
    asset = {"sessionId": "S", "assetId": "a1", "assetType": "clip", "path": "/p"}
    assert (await api.post("still-candidate", still)).status == 200
    assert (await api.post("asset", asset)).status == 200
    cases += [("still-candidate", still, "still_exists"), ("asset", asset, "asset_exists")]
    for path, body, reason in cases:
        answer = await api.post(path, body)
        assert answer.status == 409, (path, answer.body)
        assert answer.error["code"] == reason
    reasons = [r for (r,) in await db.fetch("SELECT reason FROM ledger.dead_letters ORDER BY id")]
    assert reasons == [
        "session_exists",
        "unknown_session",
        "unknown_camera",
        "unknown_still",
        "unknown_session",
        "unknown_session",
        "still_exists",
        "asset_exists",
    ]
    # without a sessionId the server looks the still up: an unknown one is refused at once
    answer = await api.post("still/update", {"stillCandidateId": "ghost", "score": 1})
    assert (answer.status, answer.error["code"]) == (409, "unknown_still")


async def test_the_same_event_id_twice_is_one_event(api: Api, db: asyncpg.Connection) -> None:
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    body = {"sessionId": "S", "eventId": "retry-1", "timestampMs": 5, "eventType": "cut"}
    assert (await api.post("event", body)).result == "retry-1"
    assert (await api.post("event", body)).result == "retry-1"
    assert await db.fetchval("SELECT count(*) FROM ledger.events WHERE event_id = 'retry-1'") == 1


async def test_bodies_over_the_limits_are_413(serve_api: ServeApi, db: asyncpg.Connection) -> None:
    async with serve_api(max_body_bytes=4096, max_event_bytes=1024) as api:
        await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        too_big = {"sessionId": "S", "timestampMs": 1, "eventType": "cut", "reason": "x" * 5000}
        answer = await api.post("event", too_big)
        assert (answer.status, answer.error["code"]) == (413, "too_large")
        event_too_big = {**too_big, "reason": "x" * 2000}  # under the body limit, over the event's
        answer = await api.post("event", event_too_big)
        assert (answer.status, answer.error["code"]) == (413, "too_large")
        assert await db.fetchval("SELECT count(*) FROM ledger.events") == 1


async def test_past_the_wait_budget_the_answer_is_202(
    serve_api: ServeApi, db: asyncpg.Connection
) -> None:
    async with serve_api(write_wait_ms=0) as api:
        answer = await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        assert answer.status == 202
        event_id = answer.result["eventId"]
        assert answer.result == {"eventId": event_id, "pending": True}
        answer = await api.post(
            "event/batch",
            {
                "sessionId": "S",
                "events": [{"timestampMs": i, "eventType": "cut"} for i in range(3)],
            },
        )
        assert answer.status == 202
        assert answer.result["pending"] is True
        assert answer.result["eventId"] == answer.result["eventIds"][-1]
        for _ in range(200):  # it goes through all the same
            if (await api.get("events", sessionId="S")).status == 200:
                page = (await api.get("events", sessionId="S")).result["page"]
                if len(page) == 3:
                    break
            await asyncio.sleep(0.02)
        assert [e["eventId"] for e in page] == answer.result["eventIds"]


@pytest.mark.parametrize("route", ["session/start", "event"])
async def test_wrong_method_and_unknown_routes_use_the_envelope(api: Api, route: str) -> None:
    response = await api.http.get(f"/production/{route}")
    assert response.status_code == 405
    assert response.json()["ok"] is False
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_batch_is_logged_in_its_order(api: Api) -> None:
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    events = [{"timestampMs": 7, "eventType": "bar_fire"} for _ in range(300)]
    ids = (await api.post("event/batch", {"sessionId": "S", "events": events})).result
    page = (await api.get("events", sessionId="S", numItems=1000)).result["page"]
    assert [e["eventId"] for e in page] == ids  # equal timestamps: log order decides
