"""503 when the database or the broker cannot be reached (a private broker, stopped here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.daemon import serve
from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.support.ledger import running_ledger


@contextlib.asynccontextmanager
async def serving_without_waiting(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """`serve` with its HTTP endpoint up, whatever else is not (yet)."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(settings, stop=stop))
    base = f"http://127.0.0.1:{settings.http_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 15
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "HTTP did not come up"
                await asyncio.sleep(0.05)
            yield http
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_503_while_the_database_is_unreachable(settings: Settings) -> None:
    down = settings.replace(database_url="postgresql://root@127.0.0.1:1/nowhere")
    async with serving_without_waiting(down) as http:
        for response in [
            await http.get("/production/session", params={"sessionId": "S"}),
            await http.get("/production/session/active"),
            await http.post("/production/event", json={"sessionId": "S"}),
        ]:
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "unavailable"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["result"]["checks"]["projections"]["ok"] is False


async def test_503_for_writes_when_the_broker_goes_away(settings: Settings, tmp_path: Path) -> None:
    broker = NatsProcess(tmp_path / "nats")
    broker.start()
    try:
        async with running_ledger(settings.replace(nats_url=broker.url)) as res:
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10)
            api = Api(http, res)
            start = {"sessionId": "S", "sessionType": "music_demo"}
            assert (await api.post("session/start", start)).status == 200
            broker.stop()
            deadline = time.monotonic() + 10
            while res.client is not None and res.client.is_connected:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            answer = await api.post(
                "event", {"sessionId": "S", "timestampMs": 1, "eventType": "cut"}
            )
            assert (answer.status, answer.error["code"]) == (503, "unavailable")
            assert "broker" in answer.error["message"]
            assert (await api.get("session", sessionId="S")).status == 200  # reads carry on
            # back again: writes go through once the client has reconnected
            broker = NatsProcess(tmp_path / "nats", port=broker.port)
            broker.start()
            event = {"sessionId": "S", "timestampMs": 2, "eventType": "cut"}
            while (answer := await api.post("event", event)).status == 503:
                assert time.monotonic() < deadline + 20, answer.body
                await asyncio.sleep(0.1)
            assert answer.status == 200, answer.body
            await http.aclose()
    finally:
        broker.stop()
