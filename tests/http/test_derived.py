"""The derived reads over HTTP against a running ledger: parameters, 404s, the answers of a
shoot published through the broker in two phases (the second with a late cut and a camera
switched off), asOf between the phases, Ledger-Position, and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from nats.aio.client import Client

from motionledger.domain.derived_answers import Alignment, CutLog, HeroWindow
from motionledger.domain.rows import Timeline
from motionledger.errors import NotCaughtUp
from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.http.test_reads import publish, visible
from tests.support import derived_reference as ref
from tests.support import events as ev

ROUTES = ["cut-log", "hero-windows", "alignment"]


async def test_parameters_are_validated_by_name(api: Api) -> None:
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    for route in ROUTES:
        for params in ({}, {"sessionId": "bad id!"}):
            answer = await api.get(route, **params)
            assert answer.status == 400, route
            assert "sessionId" in answer.error["message"]
    bad = [
        ("cut-log", {"limit": 0}, "limit"),
        ("cut-log", {"limit": 10_001}, "limit"),
        ("cut-log", {"fromMs": -1}, "fromMs"),
        ("cut-log", {"toMs": "soon"}, "toMs"),
        ("cut-log", {"asOf": -5}, "asOf"),
        ("cut-log", {"asOf": "yesterday"}, "asOf"),
        ("hero-windows", {"padMs": -1}, "padMs"),
        ("hero-windows", {"padMs": 60_001}, "padMs"),
        ("hero-windows", {"limit": 1001}, "limit"),
        ("alignment", {"limit": 0}, "limit"),
        ("alignment", {"limit": 1001}, "limit"),
        ("alignment", {"fromMs": 1.5}, "fromMs"),
        ("session/timeline", {"asOf": -1}, "asOf"),
        ("session/timeline", {"asOf": "x"}, "asOf"),
    ]
    for route, params, name in bad:
        answer = await api.get(route, sessionId="S", **params)
        assert answer.status == 400, (route, params, answer.body)
        assert name in answer.error["message"], (route, answer.error)
    for route, params in [
        ("cut-log", {"limit": 10_000, "fromMs": 0, "toMs": 0}),
        ("hero-windows", {"padMs": 0, "limit": 1000}),
        ("hero-windows", {"padMs": 60_000}),
        ("alignment", {"limit": 1000}),
    ]:
        assert (await api.get(route, sessionId="S", **params)).status == 200, (route, params)


async def test_unknown_sessions_are_404(api: Api) -> None:
    for route in [*ROUTES, "session/timeline"]:
        for params in ({}, {"asOf": 1}):
            if params and route in ("hero-windows", "alignment"):
                continue
            answer = await api.get(route, sessionId="nobody", **params)
            assert answer.status == 404, route
            assert answer.error["code"] == "not_found"


async def _positions(api: Api) -> dict[str, tuple[int, int]]:
    """eventId -> (position, recorded ms) as the log holds them."""
    assert api.res.pool is not None
    rows = await api.res.pool.fetch(
        "SELECT event_id, position, floor(extract(epoch FROM recorded_at) * 1000)::bigint AS at"
        " FROM ledger.events"
    )
    return {r["event_id"]: (r["position"], r["at"]) for r in rows}


def _director(events: list[dict[str, Any]], logged: dict[str, tuple[int, int]]) -> list[dict]:
    return [
        {**e, "position": logged[e["eventId"]][0], "cameraId": e.get("cameraId")}
        for e in events
        if e["type"] == "director.event" and e["eventId"] in logged
    ]


async def _get(api: Api, route: str, **params: Any) -> tuple[Any, int]:
    response = await api.http.get(f"/production/{route}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["result"], int(response.headers["Ledger-Position"])


async def test_answers_over_http(api: Api, nc: Client, settings: Settings) -> None:
    first = [
        ev.session_started("S", status="rolling"),
        *(ev.camera_upserted("S", c, isActive=True) for c in ("c1", "c2", "c3")),
        ev.director("S", 1000, "cut", cameraId="c1"),
        ev.director("S", 1000, "bar_fire"),
        ev.director("S", 1000, "music_phrase_start"),
        ev.director("S", 1400, "cut", cameraId="c1"),  # on air already: nothing changes
        ev.director("S", 2000, "cut", cameraId="c2"),
        ev.director("S", 2000, "bar_fire"),
        ev.director("S", 2500, "hold"),
        ev.director("S", 2600, "hero_pose_marker", cameraId="c2"),
        ev.director("S", 3000, "release"),
        ev.director("S", 3000, "bar_fire"),
        ev.director("S", 3100, "cut", cameraId="c3"),
        ev.director("S", 3500, "hero_pose_marker", cameraId="c3"),
        ev.director("S", 3900, "music_phrase_end"),
        ev.still_created("S", "st1", camera="c2", timestampMs=2650, score=0.4),
        ev.still_created("S", "st2", camera="c3", timestampMs=3450, score=0.9),
        ev.director("S", 3450, "still_candidate_marker", cameraId="c3"),
        ev.music("S", 900, section="intro", tempo=120.0),
        ev.music("S", 2900, section="build", tempo=124.5),
    ]
    await publish(nc, settings, first)
    await visible(api, first[-1]["eventId"])
    await asyncio.sleep(0.01)  # the second phase is recorded in a later millisecond
    late_cut = ev.director("S", 1500, "cut", cameraId="c3")  # a late cut, an early time
    second = [
        late_cut,
        ev.camera_state("S", "c2", isActive=False),
        ev.director("S", 4000, "cut", cameraId="c1"),
        ev.director("S", 4000, "bar_fire"),
    ]
    await publish(nc, settings, second)
    await visible(api, second[-1]["eventId"])
    logged = await _positions(api)
    everything, before = _director([*first, *second], logged), _director(first, logged)
    as_of = logged[first[-1]["eventId"]][1]
    head = max(position for position, _ in logged.values())

    cut_log, position = await _get(api, "cut-log", sessionId="S")
    msgspec.convert(cut_log, CutLog, strict=True)
    assert position >= head
    assert cut_log == ref.cut_log(everything, 0, 1 << 62, 1000)
    assert [(s["cameraId"], s["startMs"], s["endMs"], s["held"]) for s in cut_log["segments"]] == [
        ("c1", 1000, 1500, False),
        ("c3", 1500, 2000, False),  # the late cut changed the segment it falls in
        ("c2", 2000, 2500, False),
        ("c2", 2500, 3000, True),
        ("c2", 3000, 3100, False),
        ("c3", 3100, 4000, False),
        ("c1", 4000, None, False),
    ]
    assert cut_log["onAirMs"] == {"c1": 500, "c2": 1100, "c3": 1400}
    assert cut_log["segments"][1]["startEventId"] == late_cut["eventId"]
    window, _ = await _get(api, "cut-log", sessionId="S", fromMs=2500, toMs=3000, limit=2)
    assert [s["startMs"] for s in window["segments"]] == [2500, 3000]
    assert window == ref.cut_log(everything, 2500, 3000, 2)

    # as of the time between the phases: the late cut and c2's switch-off had not happened
    then, position = await _get(api, "cut-log", sessionId="S", asOf=as_of)
    assert position == logged[first[-1]["eventId"]][0]
    assert then == ref.cut_log(before, 0, 1 << 62, 1000)
    assert [s["startMs"] for s in then["segments"]][:2] == [1000, 2000]
    assert then["segments"][-1]["endMs"] is None
    timeline, position = await _get(api, "session/timeline", sessionId="S", asOf=as_of)
    msgspec.convert(timeline, Timeline, strict=True)
    assert position == logged[first[-1]["eventId"]][0]
    c2 = next(c for c in timeline["cameras"] if c["cameraId"] == "c2")
    assert c2["isActive"] is True  # switched off later: still active as of then
    now = (await api.get("session/timeline", sessionId="S")).result
    assert next(c for c in now["cameras"] if c["cameraId"] == "c2")["isActive"] is False
    assert late_cut["eventId"] not in [e["eventId"] for e in timeline["directorEvents"]]
    assert len(now["directorEvents"]) == len(timeline["directorEvents"]) + 3
    for route in ("cut-log", "session/timeline"):
        answer = await api.get(route, sessionId="S", asOf=logged[first[0]["eventId"]][1] - 1)
        assert answer.status == 404, route

    heroes, position = await _get(api, "hero-windows", sessionId="S", padMs=500)
    msgspec.convert(heroes, list[HeroWindow], strict=True)
    assert position >= head
    assert heroes == [
        {
            "startMs": 2100,
            "endMs": 4000,
            "markers": [e["eventId"] for e in first if e.get("eventType") == "hero_pose_marker"],
            "cameraIds": ["c2", "c3"],
            "stills": ["st2", "st1"],
        }
    ]
    apart, _ = await _get(api, "hero-windows", sessionId="S", padMs=100)
    assert [(w["startMs"], w["endMs"], w["stills"]) for w in apart] == [
        (2500, 2700, ["st1"]),
        (3400, 3600, ["st2"]),
    ]
    ranged, _ = await _get(api, "hero-windows", sessionId="S", padMs=100, fromMs=2701, limit=5)
    assert [w["startMs"] for w in ranged] == [3400]

    aligned, position = await _get(api, "alignment", sessionId="S")
    msgspec.convert(aligned, Alignment, strict=True)
    assert position >= head
    moments = [
        {"position": logged[e["eventId"]][0], **e} for e in first if e["type"] == "music.moment"
    ]
    assert aligned == ref.alignment(everything, moments, 0, 1 << 62, 100)
    items = {i["timestampMs"]: i for i in aligned["items"]}
    assert (items[1500]["nearestBarMs"], items[1500]["offsetMs"]) == (1000, 500)  # a tie
    assert (items[3100]["phraseStartMs"], items[3100]["phraseEndMs"]) == (1000, 3900)
    assert items[4000]["phraseStartMs"] is None  # after the phrase ended
    assert (items[3100]["section"], items[3100]["tempo"]) == ("build", 124.5)
    # |offsets| at 1000..4000: 0, 400, 500, 0, 400, 100, 450, 500, 0
    assert aligned["medianAbsOffsetMs"] == 400.0


async def test_openapi_documents_the_derived_reads(api: Api) -> None:
    document = (await api.http.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for route, field in (("cut-log", "segments"), ("alignment", "medianAbsOffsetMs")):
        operation = paths[f"/production/{route}"]["get"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert field in ok["properties"]["result"]["properties"]
        assert {"400", "404", "503"} <= set(operation["responses"])
    limit = next(
        p for p in paths["/production/cut-log"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 10_000
    timeline = paths["/production/session/timeline"]["get"]["parameters"]
    assert any(p["name"] == "asOf" for p in timeline)
    hero = paths["/production/hero-windows"]["get"]["responses"]["200"]["content"]
    assert hero["application/json"]["schema"]["properties"]["result"]["type"] == "array"


def test_a_read_not_caught_up_is_503_with_retry_after() -> None:
    """asOf past what the read tables reached within the budget: 503 not_caught_up."""
    from litestar.testing import TestClient

    from motionledger.http.app import create_app
    from motionledger.services.health import Health

    class Behind:
        async def at_least(self, _: object, attempt: Any, **__: object) -> tuple[bytes, int]:
            return await attempt()  # type: ignore[no-any-return]

        async def cut_log(self, *args: object) -> tuple[bytes, int]:
            raise NotCaughtUp(10, 7)

        hero_windows = alignment = timeline_as_of = cut_log

    app = create_app(
        health=Health(),
        reads=lambda: None,
        derived=lambda: Behind(),  # type: ignore[arg-type,return-value]
        writes=lambda: None,
        token=None,
        max_body_bytes=1024,
    )
    with TestClient(app) as http:  # type: ignore[arg-type]
        response = http.get("/production/cut-log", params={"sessionId": "S", "asOf": 5})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "not_caught_up"
    assert "10" in response.json()["error"]["message"]
