"""The eight read routes: parameters, 404s, orders, filters, windows and limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from motionledger.domain.rows import ROWS, EventsPage, Timeline
from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.support import events as ev

ROUTES = ["session", "session/timeline", "cameras", "events", "stills", "music-moments", "assets"]


async def publish(nc: Client, settings: Settings, events: list[dict[str, Any]]) -> None:
    await ev.publish_events(nc.jetstream(), settings.subject_root, events)


async def visible(api: Api, event_id: str, timeout: float = 10) -> None:
    """Until the projector has applied the log up to the event with this id."""
    pool = api.res.pool
    assert pool is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        position = await pool.fetchval(
            "SELECT position FROM ledger.events WHERE event_id = $1", event_id
        )
        done = await pool.fetchval("SELECT min(position) FROM production.projection_state")
        if position is not None and done >= position:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{event_id} not projected")


def ids(rows: list[dict[str, Any]], field: str = "_id") -> list[Any]:
    return [r[field] for r in rows]


async def test_parameters_are_validated_by_name(api: Api) -> None:
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    for route in ROUTES:
        answer = await api.get(route)
        assert answer.status == 400, route
        assert "sessionId" in answer.error["message"]
        answer = await api.get(route, sessionId="bad id!")
        assert answer.status == 400, route
        assert "sessionId" in answer.error["message"]
    bad = [
        ("session/timeline", {"limit": 0}, "limit"),
        ("session/timeline", {"limit": 1001}, "limit"),
        ("session/timeline", {"windowStartMs": -1}, "windowStartMs"),
        ("session/timeline", {"windowEndMs": "soon"}, "windowEndMs"),
        ("events", {"numItems": "ten"}, "numItems"),
        ("events", {"numItems": 1001}, "numItems"),
        ("events", {"eventType": "jump"}, "eventType"),
        ("events", {"cameraId": "a b"}, "cameraId"),
        ("events", {"cursor": "garbage!"}, "cursor"),
        ("stills", {"favoritesOnly": "maybe"}, "favoritesOnly"),
        ("stills", {"limit": -5}, "limit"),
        ("music-moments", {"limit": "x"}, "limit"),
        ("assets", {"assetType": ""}, "assetType"),
    ]
    for route, params, name in bad:
        answer = await api.get(route, sessionId="S", **params)
        assert answer.status == 400, (route, params, answer.body)
        assert name in answer.error["message"], (route, answer.error)
    answer = await api.get("session/active", sessionType="wedding")
    assert answer.status == 400
    assert "sessionType" in answer.error["message"]
    assert (await api.get("events", sessionId="S", numItems=1000)).status == 200


async def test_unknown_sessions_are_404_on_every_route(api: Api) -> None:
    for route in ROUTES:
        answer = await api.get(route, sessionId="nobody")
        assert answer.status == 404, route
        assert answer.error["code"] == "not_found"
        assert "nobody" in answer.error["message"]
    unknown = await api.http.get("/production/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_orders_filters_windows_and_limits(api: Api, nc: Client, settings: Settings) -> None:
    events = [ev.session_started("S", sessionType="photoshoot_review")]
    events += [ev.camera_upserted("S", c) for c in ("c2", "c10", "C1", "c1")]
    director = [
        ev.director("S", 100, "cut", cameraId="c1"),
        ev.director("S", 200, "hold", cameraId="c2"),
        ev.director("S", 200, "cut", cameraId="c1"),  # a tie: log order decides
        ev.director("S", 300, "cut", cameraId="c2"),
        ev.director("S", 50, "hero_pose_marker"),
        ev.director("S", 400, "cut", cameraId="c1"),
    ]
    stills = [
        ev.still_created("S", "st1", camera="c1", timestampMs=300, score=0.5),
        ev.still_created("S", "st2", camera="c2", timestampMs=100, score=0.9),
        ev.still_created("S", "st3", camera="c1", timestampMs=200, score=0.5, isFavorite=True),
        ev.still_created("S", "st4", camera="c1", timestampMs=150, score=0.1),
    ]
    music = [ev.music("S", ts, section="drop" if ts > 150 else "intro") for ts in (300, 100, 200)]
    assets = [ev.asset("S", f"a{i}", assetType="clip" if i % 2 else "hero_still") for i in range(4)]
    later = [ev.session_started("T", sessionType="music_demo", status="rolling")]
    done = [ev.session_started("U"), ev.session_completed("U")]
    everything = [*events, *director, *stills, *music]
    await publish(nc, settings, everything)
    for asset in assets:  # each its own recorded time
        await publish(nc, settings, [asset])
        await visible(api, asset["eventId"])
    await publish(nc, settings, [*later, *done])
    await visible(api, done[-1]["eventId"])

    cameras = (await api.get("cameras", sessionId="S")).result
    assert ids(cameras, "cameraId") == ["C1", "c1", "c10", "c2"]  # code point order
    msgspec.convert(cameras, list[ROWS["cameras"]], strict=True)  # type: ignore[valid-type]

    page = (await api.get("events", sessionId="S")).result
    msgspec.convert(page, EventsPage, strict=True)
    d = [e["eventId"] for e in director]
    assert ids(page["page"], "eventId") == [d[4], d[0], d[1], d[2], d[3], d[5]]
    assert page["isDone"] is True
    only = (await api.get("events", sessionId="S", eventType="cut", cameraId="c1")).result
    assert ids(only["page"], "eventId") == [d[0], d[2], d[5]]
    typed = (await api.get("events", sessionId="S", eventType="hold")).result
    assert ids(typed["page"], "eventId") == [d[1]]

    all_stills = (await api.get("stills", sessionId="S")).result
    assert ids(all_stills) == ["st2", "st3", "st1", "st4"]  # score desc, then time asc
    assert ids((await api.get("stills", sessionId="S", limit=2)).result) == ["st2", "st3"]
    assert ids((await api.get("stills", sessionId="S", cameraId="c1")).result) == [
        "st3",
        "st1",
        "st4",
    ]
    favorites = (await api.get("stills", sessionId="S", favoritesOnly=True)).result
    assert ids(favorites) == ["st3"]
    assert ids((await api.get("stills", sessionId="S", favoritesOnly=False)).result) == ids(
        all_stills
    )

    moments = (await api.get("music-moments", sessionId="S")).result
    assert ids(moments, "timestampMs") == [100, 200, 300]
    assert ids((await api.get("music-moments", sessionId="S", limit=2)).result, "timestampMs") == [
        100,
        200,
    ]

    listed = (await api.get("assets", sessionId="S")).result
    assert ids(listed) == ["a0", "a1", "a2", "a3"]
    assert ids(listed, "createdAt") == sorted(ids(listed, "createdAt"))
    assert ids((await api.get("assets", sessionId="S", assetType="clip")).result) == ["a1", "a3"]

    timeline = (await api.get("session/timeline", sessionId="S")).result
    msgspec.convert(timeline, Timeline, strict=True)
    assert timeline["session"]["sessionId"] == "S"
    assert ids(timeline["cameras"], "cameraId") == ["C1", "c1", "c10", "c2"]
    assert ids(timeline["directorEvents"], "eventId") == [d[4], d[0], d[1], d[2], d[3], d[5]]
    assert ids(timeline["assets"]) == ["a0", "a1", "a2", "a3"]
    window = (
        await api.get("session/timeline", sessionId="S", windowStartMs=100, windowEndMs=300)
    ).result
    assert ids(window["directorEvents"], "eventId") == [d[0], d[1], d[2], d[3]]  # inclusive
    assert ids(window["stillCandidates"]) == ["st2", "st4", "st3", "st1"]
    assert ids(window["musicMoments"], "timestampMs") == [100, 200, 300]
    latest = (
        await api.get(
            "session/timeline", sessionId="S", windowStartMs=100, windowEndMs=300, limit=2
        )
    ).result
    assert ids(latest["directorEvents"], "eventId") == [d[2], d[3]]  # the 2 latest, ascending
    assert ids(latest["stillCandidates"]) == ["st3", "st1"]
    assert ids(latest["musicMoments"], "timestampMs") == [200, 300]
    assert ids(latest["assets"]) == ["a2", "a3"]  # the latest 2 by createdAt, ascending
    assert len(latest["cameras"]) == 4  # all of them
    tie = (
        await api.get(
            "session/timeline", sessionId="S", windowStartMs=200, windowEndMs=200, limit=1
        )
    ).result
    assert ids(tie["directorEvents"], "eventId") == [d[2]]  # of a tie, the later in the log

    active = (await api.get("session/active")).result
    assert active["sessionId"] == "T"  # U completed; T started last
    review = (await api.get("session/active", sessionType="photoshoot_review")).result
    assert review["sessionId"] == "S"
    assert (await api.get("session/active", sessionType="photoshoot_performance")).result is None
    msgspec.convert(active, ROWS["sessions"], strict=True)


@pytest.mark.parametrize("route", ["session/timeline", "events", "cameras", "stills"])
async def test_an_empty_session_lists_nothing(api: Api, route: str) -> None:
    await api.post("session/start", {"sessionId": "E", "sessionType": "music_demo"})
    result = (await api.get(route, sessionId="E")).result
    if route == "events":
        assert result["page"] == []
        assert result["isDone"] is True
        assert isinstance(result["continueCursor"], str)
    elif route == "session/timeline":
        assert result["directorEvents"] == result["cameras"] == result["assets"] == []
    else:
        assert result == []
