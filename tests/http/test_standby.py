"""Two `serve` processes on one ledger: the standby one still answers writes and reads,
its waiters hearing the other process's ingest and projector commits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from motionledger.adapters.embedded.processes import free_port
from motionledger.daemon import Runtime, serve
from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.support.ledger import ServeProcess


async def test_a_standby_process_answers_writes_once_the_active_one_projected(
    settings: Settings, tmp_path: Path
) -> None:
    active = ServeProcess(settings, tmp_path / "active.log").start()
    stop = asyncio.Event()
    task: asyncio.Task[int] | None = None
    try:
        await active.wait_ready()
        standby_settings = settings.replace(http_port=free_port())
        started: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(serve(standby_settings, stop=stop, started=started.set_result))
        res = await asyncio.wait_for(started, 20)
        deadline = time.monotonic() + 20
        while res.services is None or not res.services.waiters.ready:
            assert time.monotonic() < deadline, "standby's waiters never listened"
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{standby_settings.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            api = Api(http, res)
            start = {"sessionId": "S", "sessionType": "music_demo"}
            assert (await api.post("session/start", start)).result == "S"
            cut = {"sessionId": "S", "timestampMs": 1, "eventType": "cut"}
            event_id = (await api.post("event", cut)).result
            page = (await api.get("events", sessionId="S")).result["page"]
            assert [e["eventId"] for e in page] == [event_id]
            ghost = await api.post("event", {**cut, "sessionId": "ghost"})
            assert (ghost.status, ghost.error["code"]) == (409, "unknown_session")
        assert res.ingestor is not None
        assert not res.ingestor.active  # the other process ingests
        assert not res.services.projector.active  # and projects
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        assert active.terminate() == 0, active.tail()
