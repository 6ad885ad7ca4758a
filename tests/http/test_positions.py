"""`Ledger-Position` and `minPosition`: every 200 write carries its event's log position,
every 200 read the position its tables reflect; a read given a write's position sees the
write, on any `serve` of the same database, waiting (event-driven) for the read tables when
they are behind, else 503 `not_caught_up` with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import msgspec
from nats.aio.client import Client

from motionledger.adapters.embedded.processes import free_port
from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.http.test_live import ends_with, until_logged
from tests.support import events as ev
from tests.support.ledger import ServeProcess
from tests.support.sse import follow

POSITION = "Ledger-Position"


async def test_writes_carry_their_position_and_reads_what_they_reflect(api: Api) -> None:
    pool = api.res.pool
    assert pool is not None
    http = api.http
    start = await http.post(
        "/production/session/start",
        json={"sessionId": "S", "sessionType": "music_demo", "eventId": "e-start"},
    )
    assert start.status_code == 200
    started_at = int(start.headers[POSITION])
    assert started_at == await until_logged(pool, "e-start")
    cut = {"sessionId": "S", "timestampMs": 5, "eventType": "cut", "eventId": "e-cut"}
    first = await http.post("/production/event", json=cut)
    # a retry is answered from the log: the same position, nothing written again
    again = await http.post("/production/event", json=cut)
    assert int(first.headers[POSITION]) == int(again.headers[POSITION]) > started_at
    batch = await http.post(
        "/production/event/batch",
        json={
            "sessionId": "S",
            "events": [{"timestampMs": t, "eventType": "hold"} for t in (6, 7)],
        },
    )
    head = await pool.fetchval("SELECT max(position) FROM ledger.events")
    assert int(batch.headers[POSITION]) == head  # the batch's last event
    for path, params in [
        ("session", {}),
        ("session/active", {}),
        ("session/timeline", {}),
        ("cameras", {}),
        ("events", {}),
        ("stills", {}),
        ("music-moments", {}),
        ("assets", {}),
        ("cut-log", {}),
        ("hero-windows", {}),
        ("alignment", {}),
    ]:
        answer = await http.get(
            f"/production/{path}", params={"sessionId": "S", "minPosition": head, **params}
        )
        assert answer.status_code == 200, (path, answer.text)
        assert int(answer.headers[POSITION]) >= head, path
    page = (await http.get("/production/events", params={"sessionId": "S"})).json()["result"]
    assert [e["eventType"] for e in page["page"]] == ["cut", "hold", "hold"]
    # an unknown session is still a 404 (the position comes with the rows, one statement)
    assert (await http.get("/production/cameras", params={"sessionId": "nope"})).status_code == 404


@contextlib.asynccontextmanager
async def two_processes(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Two `serve`s on one database: the first ingests and projects, the second stands by
    for those and answers HTTP. Yields their base URLs."""
    first = ServeProcess(settings, tmp_path / "first.log")
    second = ServeProcess(settings.replace(http_port=free_port()), tmp_path / "second.log")
    try:
        first.start()
        await first.wait_ready()
        second.start()
        await second.wait_ready(active=False)
        yield first.base_url, second.base_url
    finally:
        second.kill()
        first.kill()


async def test_a_write_position_makes_a_read_on_another_process_see_it(
    settings: Settings, tmp_path: Path, nc: Client
) -> None:
    settings = settings.replace(write_wait_ms=2000)
    async with (
        two_processes(settings, tmp_path) as (writer, reader),
        httpx.AsyncClient(timeout=30) as http,
    ):
        start = await http.post(
            f"{writer}/production/session/start",
            json={"sessionId": "S", "sessionType": "music_demo"},
        )
        assert start.status_code == 200
        written = int(start.headers[POSITION])
        seen = await http.get(
            f"{reader}/production/session", params={"sessionId": "S", "minPosition": written}
        )
        assert seen.status_code == 200
        assert int(seen.headers[POSITION]) >= written
        # the second process follows the session too, fed by its own listener
        cut = ev.director("S", 10, "cut", cameraId="c1")
        following = asyncio.ensure_future(follow(reader, "S", done=ends_with(cut["eventId"])))

        # the read tables held behind the log: the projector waits for these row locks
        lock = await asyncpg.connect(settings.database_url)
        held = lock.transaction()
        await held.start()
        await lock.execute("SELECT * FROM production.projection_state FOR UPDATE")
        try:
            await ev.publish_events(nc.jetstream(), settings.subject_root, [cut])
            conn = await asyncpg.connect(settings.database_url)
            try:
                position = await conn.fetchval(
                    "SELECT position FROM ledger.events WHERE event_id = $1", cut["eventId"]
                )
                while position is None:
                    await asyncio.sleep(0.02)
                    position = await conn.fetchval(
                        "SELECT position FROM ledger.events WHERE event_id = $1", cut["eventId"]
                    )
            finally:
                await conn.close()
            params = {"sessionId": "S", "minPosition": position}
            behind = await http.get(f"{reader}/production/events", params=params)
            assert behind.status_code == 503, behind.text
            assert behind.json()["error"]["code"] == "not_caught_up"
            assert behind.headers["Retry-After"]
            waiting = asyncio.ensure_future(http.get(f"{reader}/production/events", params=params))
            await asyncio.sleep(0)
        finally:
            await held.rollback()
            await lock.close()
        answer = await waiting
        assert answer.status_code == 200, answer.text
        assert int(answer.headers[POSITION]) >= position
        page = answer.json()["result"]["page"]
        assert [e["_id"] for e in page] == [cut["eventId"]]
        # an asOf read from before the cut, asked for the cut's position: it reflects it
        started_ms = await http.get(f"{reader}/production/session", params={"sessionId": "S"})
        as_of = started_ms.json()["result"]["startedAt"]
        cut_log = await http.get(
            f"{reader}/production/cut-log",
            params={"sessionId": "S", "asOf": as_of, "minPosition": position},
        )
        assert cut_log.status_code == 200, cut_log.text
        assert int(cut_log.headers[POSITION]) == position
        assert cut_log.json()["result"]["segments"] == []
        # a position beyond the log is none the ledger answered: 404 at once, no wait;
        # a malformed position: 400
        beyond = await http.get(
            f"{reader}/production/cameras", params={"sessionId": "S", "minPosition": 10**12}
        )
        assert (beyond.status_code, beyond.json()["error"]["code"]) == (404, "not_found")
        assert "beyond the log" in beyond.json()["error"]["message"]
        malformed = await http.get(
            f"{reader}/production/cameras", params={"sessionId": "S", "minPosition": "soon"}
        )
        assert malformed.status_code == 400
        stream = await asyncio.wait_for(following, 60)
        assert [(e.id, e.type) for e in stream.events] == [
            (written, "session.started"),
            (position, "director.event"),
        ]
        assert msgspec.json.decode(stream.events[-1].data)["eventId"] == cut["eventId"]
