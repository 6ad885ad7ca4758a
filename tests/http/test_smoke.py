"""A new user's first session over HTTP with a token, the OpenAPI document, probes, metrics."""

from __future__ import annotations

import httpx

from motionledger.domain.requests import WRITES
from tests.http.conftest import ServeApi

READS = [
    "/production/session",
    "/production/session/active",
    "/production/session/timeline",
    "/production/cameras",
    "/production/events",
    "/production/stills",
    "/production/music-moments",
    "/production/assets",
]


async def test_the_readme_smoke_sequence_with_a_token(serve_api: ServeApi) -> None:
    async with serve_api(token="s3cret-token") as api:
        base = str(api.http.base_url)
        async with httpx.AsyncClient(base_url=base) as anonymous:
            for path, method in [("/production/session?sessionId=x", "GET")] + [
                (f"/production/{w.path}", "POST") for w in WRITES
            ]:
                response = await anonymous.request(method, path, json={})
                assert response.status_code == 401, path
                assert response.json()["error"]["code"] == "unauthorized"
            wrong = await anonymous.get(
                "/production/session/active", headers={"authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            for probe in ("/healthz", "/readyz", "/metrics"):
                assert (await anonymous.get(probe)).status_code == 200, probe

        session = (
            await api.post(
                "session/start",
                {"sessionId": "shoot-1", "sessionType": "photoshoot_performance", "title": "Demo"},
            )
        ).result
        assert session == "shoot-1"
        for camera, role in (("cam-hero", "hero"), ("cam-wide", "wide")):
            row = (
                await api.post(
                    "camera/upsert",
                    {
                        "sessionId": session,
                        "cameraId": camera,
                        "sourceType": "iphone",
                        "role": role,
                        "priorityWeight": 1.0,
                        "isActive": True,
                    },
                )
            ).result
            assert row["cameraId"] == camera
        cut = (
            await api.post(
                "event",
                {
                    "sessionId": session,
                    "timestampMs": 1_000,
                    "eventType": "cut",
                    "cameraId": "cam-hero",
                    "reason": "motion peak",
                },
            )
        ).result
        hero = (
            await api.post(
                "hero-pose",
                {"sessionId": session, "timestampMs": 1_500, "cameraId": "cam-hero", "score": 0.93},
            )
        ).result
        moment = (
            await api.post(
                "music-moment",
                {"sessionId": session, "timestampMs": 1_500, "section": "drop", "tempo": 128.0},
            )
        ).result
        still = (
            await api.post(
                "still-candidate",
                {
                    "sessionId": session,
                    "stillCandidateId": "still-1",
                    "cameraId": "cam-hero",
                    "timestampMs": 1_500,
                    "score": 0.93,
                    "sourceEventId": hero,
                },
            )
        ).result
        asset = (
            await api.post(
                "asset",
                {
                    "sessionId": session,
                    "assetId": "master-1",
                    "assetType": "video_master",
                    "path": "/shoots/shoot-1/master.mov",
                },
            )
        ).result
        timeline = (
            await api.get("session/timeline", sessionId=session, windowStartMs=0, windowEndMs=2_000)
        ).result
        assert timeline["session"]["title"] == "Demo"
        assert [c["cameraId"] for c in timeline["cameras"]] == ["cam-hero", "cam-wide"]
        assert [e["eventId"] for e in timeline["directorEvents"]] == [cut, hero]
        assert [m["eventId"] for m in timeline["musicMoments"]] == [moment]
        assert [s["stillCandidateId"] for s in timeline["stillCandidates"]] == [still]
        assert timeline["stillCandidates"][0]["sourceEventId"] == hero
        assert [a["assetId"] for a in timeline["assets"]] == [asset]


async def test_openapi_documents_every_route_from_the_structs(serve_api: ServeApi) -> None:
    async with serve_api() as api:
        document = (await api.http.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path in READS:
        operation = paths[path]["get"]
        assert "200" in operation["responses"]
        assert any(p["name"] == "sessionId" for p in operation.get("parameters", [])) or (
            path == "/production/session/active"
        )
    for write in [*(w.path for w in WRITES), "event/batch"]:
        operation = paths[f"/production/{write}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["type"] == "object"
        assert body["additionalProperties"] is False
        assert {"200", "202", "400", "409", "413", "503"} <= set(operation["responses"])
    start = paths["/production/session/start"]["post"]["requestBody"]["content"]
    assert start["application/json"]["schema"]["required"] == ["sessionType"]
    ok = paths["/production/session"]["get"]["responses"]["200"]["content"]["application/json"]
    row = ok["schema"]["properties"]["result"]["properties"]
    assert {"_id", "_creationTime", "createdAt", "updatedAt", "startedAt"} <= set(row)
    events = paths["/production/events"]["get"]["parameters"]
    limit = next(p for p in events if p["name"] == "numItems")
    assert limit["schema"]["maximum"] == 1000


async def test_readiness_and_metrics(serve_api: ServeApi) -> None:
    async with serve_api() as api:
        await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        await api.get("events", sessionId="S")
        ready = (await api.http.get("/readyz")).json()
        text = (await api.http.get("/metrics")).text
    projections = ready["result"]["checks"]["projections"]
    assert projections["ok"] is True
    assert projections["detail"]["sessions"]["lagMs"] == 0
    for name in (
        'motionledger_projection_position{projection="sessions"}',
        'motionledger_projection_lag_positions{projection="director_events"}',
        'motionledger_projection_lag_seconds{projection="assets"}',
        'motionledger_publish_to_visible_seconds_count{lane="session"}',
        'route="/production/events",status="200"',
        'route="/production/session/start",status="200"',
    ):
        assert name in text, name
