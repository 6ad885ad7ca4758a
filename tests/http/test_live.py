"""GET /production/session/live against a real `serve` (uvicorn, NATS and PostgreSQL real):
tens of followers while thousands of events are published at a few hundred a second
alongside other sessions' events; each gets exactly its session's events, once, in log
order, ids equal to log positions; a client cut off midway resumes with Last-Event-ID to
exactly the rest; a client that never reads is dropped past the bound and resumes."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from nats.aio.client import Client

from motionledger import metrics
from motionledger.settings import Settings
from tests.http.conftest import Api, ServeApi
from tests.support import events as ev
from tests.support.ledger import ServeProcess
from tests.support.load import Load, Running
from tests.support.sse import Received, Stream, follow


def base(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.http_port}"


async def logged(pool: asyncpg.Pool, session: str) -> list[tuple[int, str, Any]]:
    """The session's log: (position, type, body) in order."""
    rows = await pool.fetch(
        "SELECT position, type, body FROM ledger.events WHERE session_id = $1 ORDER BY position",
        session,
    )
    return [(r[0], r[1], msgspec.json.decode(r[2])) for r in rows]


async def until_logged(pool: asyncpg.Pool, event_id: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        position = await pool.fetchval(
            "SELECT position FROM ledger.events WHERE event_id = $1", event_id
        )
        if position is not None:
            return int(position)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{event_id} never logged")


def as_logged(received: list[Received]) -> list[tuple[int, str, Any]]:
    return [(e.id, e.type, e.body) for e in received]


def ends_with(event_id: str) -> Any:
    return lambda stream: (stream.last_body or {}).get("eventId") == event_id


async def test_tens_of_followers_get_exactly_their_session_once_in_order(
    api: Api, settings: Settings, nc: Client
) -> None:
    pool = api.res.pool
    assert pool is not None
    sent_before = _sent()
    load = Running(Load([settings.nats_url or ""], settings.subject_root, sessions=4, rate=400))
    await load.wait_count(40)
    followed = sorted(load.load.sent)[0]
    end = ev.session_updated(followed, notes="the end")
    done = ends_with(end["eventId"])
    # from the start, and resuming from positions (Last-Event-ID wins over after)
    followers = [follow(base(settings), followed, done=done) for _ in range(20)]
    midway = (await logged(pool, followed))[5][0]
    followers.append(follow(base(settings), followed, done=done, after=midway))
    followers.append(follow(base(settings), followed, done=done, last_event_id=midway, after=1))
    cut: list[Stream] = []

    async def cut_off_then_resume() -> Stream:
        first = await follow(base(settings), followed, done=lambda s: len(s.events) >= 300)
        cut.append(first)
        assert first.last_id is not None
        return await follow(base(settings), followed, done=done, last_event_id=first.last_id)

    tasks = [asyncio.ensure_future(f) for f in [*followers, cut_off_then_resume()]]
    await load.wait_count(3200, timeout=120)
    sent = await load.stop()
    await ev.publish_events(nc.jetstream(), settings.subject_root, [end])
    await until_logged(pool, end["eventId"])
    streams = await asyncio.wait_for(asyncio.gather(*tasks), 120)

    log = await logged(pool, followed)
    assert {body["eventId"] for _, _, body in log} == {*sent.sent[followed], end["eventId"]}
    assert len(log) > 600  # a fair share of the 3200 events, the other sessions' aside
    for stream in streams[:20]:
        assert stream.status == 200
        assert stream.content_type.startswith("text/event-stream")
        assert as_logged(stream.events) == log  # ids are positions, data the logged body
    assert as_logged(streams[20].events) == [row for row in log if row[0] > midway]
    assert as_logged(streams[21].events) == [row for row in log if row[0] > midway]
    [first] = cut
    assert 300 <= len(first.events) < len(log)
    assert as_logged(first.events + streams[22].events) == log  # exactly the rest
    assert _sent() - sent_before >= 20 * len(log)  # motionledger_live_events_sent_total


def _sent() -> float:
    return metrics.REGISTRY.get_sample_value("motionledger_live_events_sent_total") or 0.0


async def test_an_unknown_session_is_404_and_parameters_are_checked(api: Api) -> None:
    stream = await follow(base(api.res.settings), "nobody", done=lambda _: True)
    assert (stream.status, stream.error["error"]["code"]) == (404, "not_found")
    for params, headers in [
        ({"after": "-1"}, {}),
        ({"after": "x"}, {}),
        ({}, {"Last-Event-ID": "abc"}),
        ({}, {"Last-Event-ID": "-5"}),
    ]:
        answer = await api.http.get(
            "/production/session/live", params={"sessionId": "S", **params}, headers=headers
        )
        assert answer.status_code == 400, (params, headers, answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"


async def test_the_token_applies_to_the_stream(serve_api: ServeApi) -> None:
    async with serve_api(token="t0ken") as api:
        await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        url = base(api.res.settings)
        refused = await follow(url, "S", done=lambda _: True)
        assert (refused.status, refused.error["error"]["code"]) == (401, "unauthorized")
        allowed = await follow(
            url, "S", done=lambda s: len(s.events) == 1, headers={"Authorization": "Bearer t0ken"}
        )
        assert [e.type for e in allowed.events] == ["session.started"]


async def test_streams_past_the_bound_are_503_and_an_idle_one_gets_keep_alives(
    serve_api: ServeApi,
) -> None:
    async with serve_api(live_max_streams=2) as api:
        await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        services = api.res.services
        assert services is not None
        services.live.keep_alive_s = 0.05  # (10 s in service)
        url = base(api.res.settings)
        idle = [
            asyncio.ensure_future(
                follow(url, "S", done=lambda s: s.comments.count("keep-alive") >= 3)
            )
            for _ in range(2)
        ]
        while _open() < 2:
            await asyncio.sleep(0.02)
        third = await follow(url, "S", done=lambda _: True)
        assert (third.status, third.error["error"]["code"]) == (503, "unavailable")
        assert "MOTIONLEDGER_LIVE_MAX_STREAMS" in third.error["error"]["message"]
        for stream in await asyncio.gather(*idle):
            assert [e.type for e in stream.events] == ["session.started"]
            assert stream.comments[0] == "following S after 0"
        while _open() > 0:  # they hung up: the hub forgot them
            await asyncio.sleep(0.02)
        again = await follow(url, "S", done=lambda s: len(s.events) == 1)
        assert again.status == 200


def _open() -> float:
    return metrics.REGISTRY.get_sample_value("motionledger_live_streams_open") or 0.0


# -- a client that never reads ------------------------------------------------------------
def _dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response, as far as it came."""
    _, _, rest = raw.partition(b"\r\n\r\n")
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16) if size_line else 0
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return body


def _events(body: bytes) -> list[Received]:
    found = []
    for block in body.split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"data" in lines:
            found.append(Received(int(lines[b"id"]), lines[b"event"].decode(), lines[b"data"]))
    return found


def _dropped() -> float:
    return metrics.REGISTRY.get_sample_value("motionledger_live_clients_dropped_total") or 0.0


async def test_a_client_that_never_reads_is_dropped_and_resumes_exactly(
    api: Api, settings: Settings, nc: Client
) -> None:
    pool = api.res.pool
    assert pool is not None
    await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few events
    stalled.connect(("127.0.0.1", settings.http_port))
    stalled.sendall(b"GET /production/session/live?sessionId=S HTTP/1.1\r\nHost: x\r\n\r\n")
    before = _dropped()
    # The kernel takes ~3 MB for a client that does not read before a write blocks (the
    # send buffer grows to net.ipv4.tcp_wmem's 4 MB): events of ~1 KB fill that first, and
    # then 10 000 wait in the hub for it.
    pad = {"note": "x" * 1000}
    events = [ev.director("S", n, "cut", cameraId="c1", metadata=pad) for n in range(16_000)]
    end = events[-1]["eventId"]
    reader = asyncio.ensure_future(follow(base(settings), "S", done=ends_with(end)))
    for start in range(0, len(events), 2000):
        await ev.publish_events(nc.jetstream(), settings.subject_root, events[start : start + 2000])
    await until_logged(pool, end)
    deadline = time.monotonic() + 120
    while _dropped() == before:  # the hub lets it go once 10 000 events wait for it
        assert time.monotonic() < deadline, "the client that never reads was never dropped"
        await asyncio.sleep(0.05)
    # it reads at last: what was written to it, then the end of the stream
    stalled.setblocking(True)
    stalled.settimeout(30)
    raw = b""
    while chunk := await asyncio.to_thread(stalled.recv, 1 << 20):
        raw += chunk
    stalled.close()
    got = _events(_dechunk(raw))
    log = await logged(pool, "S")
    assert 0 < len(got) < len(log) - 10_000, len(got)
    assert as_logged(got) == log[: len(got)]
    rest = await follow(base(settings), "S", done=ends_with(end), last_event_id=got[-1].id)
    assert as_logged(got + rest.events) == log
    # and the one that kept reading got everything, the ledger never waiting for the other
    assert as_logged((await reader).events) == log


# -- SIGTERM -------------------------------------------------------------------------------
async def _streams_open(http: httpx.AsyncClient, url: str) -> float:
    text = (await http.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("motionledger_live_streams_open "):
            return float(line.split()[1])
    return 0.0


async def test_sigterm_closes_open_streams_and_the_drain_does_not_wait_on_them(
    settings: Settings, tmp_path: Path, nc: Client
) -> None:
    serve = ServeProcess(settings, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        url = serve.base_url
        async with httpx.AsyncClient(timeout=30) as http:
            started = await http.post(
                f"{url}/production/session/start",
                json={"sessionId": "S", "sessionType": "music_demo"},
            )
            assert started.status_code == 200
            reading = asyncio.ensure_future(follow(url, "S", done=lambda _: False))
            # one that stopped reading with more written to it than the kernel takes (~3 MB):
            # its last write never completes, and must not hold the process up
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", settings.http_port))
            stalled.sendall(b"GET /production/session/live?sessionId=S HTTP/1.1\r\nHost: x\r\n\r\n")
            pad = {"note": "x" * 1000}
            events = [ev.director("S", n, "cut", metadata=pad) for n in range(5000)]
            await ev.publish_events(nc.jetstream(), settings.subject_root, events)
            while await _streams_open(http, url) < 2:
                await asyncio.sleep(0.05)
            conn = await asyncpg.connect(settings.database_url)
            try:
                end = events[-1]["eventId"]
                while not await conn.fetchval(
                    "SELECT 1 FROM ledger.events WHERE event_id = $1", end
                ):
                    await asyncio.sleep(0.05)
            finally:
                await conn.close()
        serve.signal(signal.SIGTERM)
        assert await asyncio.to_thread(serve.process.wait, 60) == 0  # type: ignore[union-attr]
        stream = await asyncio.wait_for(reading, 30)
        assert stream.ended_by_server
        assert stream.comments[-1] == "closed: the ledger is stopping; resume with Last-Event-ID"
        assert [e.type for e in stream.events][:1] == ["session.started"]
        stalled.close()
    finally:
        serve.kill()
