"""The SDK's follower (motionledger.follow) and `motionledger follow`, against real ledgers:
typed events with their positions, resumed by itself across a server that died, and the
command on a producer-only install (no asyncpg, Litestar, structlog...)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client

from motionledger.domain.events import DirectorEvent, SessionStarted
from motionledger.follow import Followed, FollowRefused, follow
from motionledger.settings import Settings
from tests.http.conftest import ServeApi
from tests.http.test_live import logged, until_logged
from tests.support import events as ev
from tests.support.ledger import ServeProcess


async def test_the_iterator_resumes_by_itself_across_a_server_that_died(
    settings: Settings, tmp_path: Path, nc: Client
) -> None:
    serve = ServeProcess(settings, tmp_path / "serve.log").start()
    got: list[Followed] = []
    halfway, restarted = asyncio.Event(), asyncio.Event()
    first = [ev.director("S", n, "cut", cameraId="c1") for n in range(300)]
    second = [ev.director("S", 1000 + n, "hold") for n in range(300)]
    end = second[-1]["eventId"]

    async def collect() -> None:
        async for item in follow(serve.base_url, "S", retry_s=0.1, max_retry_s=0.5):
            got.append(item)
            if len(got) == 150:
                halfway.set()
                await restarted.wait()  # the server dies while this one is mid-stream
            if item.event.event_id == end:
                return

    try:
        await serve.wait_ready()
        async with httpx.AsyncClient(timeout=30) as http:
            started = await http.post(
                f"{serve.base_url}/production/session/start",
                json={"sessionId": "S", "sessionType": "music_demo"},
            )
            assert started.status_code == 200
        await ev.publish_events(nc.jetstream(), settings.subject_root, first)
        following = asyncio.ensure_future(collect())
        await asyncio.wait_for(halfway.wait(), 60)
        serve.kill()
        await ev.publish_events(nc.jetstream(), settings.subject_root, second)
        serve.start()
        await serve.wait_ready()
        restarted.set()
        await asyncio.wait_for(following, 120)
        conn = await _pool(settings)
        try:
            log = await logged(conn, "S")
        finally:
            await conn.close()
    finally:
        serve.kill()
    assert [(i.position, i.event.event_id) for i in got] == [(p, b["eventId"]) for p, _, b in log]
    assert isinstance(got[0].event, SessionStarted)
    assert all(isinstance(i.event, DirectorEvent) for i in got[1:])
    assert json.loads(got[1].data) == log[1][2]


async def _pool(settings: Settings):  # type: ignore[no-untyped-def]
    import asyncpg

    return await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)


async def test_an_unknown_session_or_a_wrong_token_is_raised_not_retried(
    serve_api: ServeApi,
) -> None:
    async with serve_api(token="right") as api:
        await api.post("session/start", {"sessionId": "S", "sessionType": "music_demo"})
        url = f"http://127.0.0.1:{api.res.settings.http_port}"
        with pytest.raises(FollowRefused) as unknown:
            await anext(follow(url, "nobody", token="right"))
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")
        with pytest.raises(FollowRefused) as wrong:
            await anext(follow(url, "S", token="wrong"))
        assert (wrong.value.status, wrong.value.code) == (401, "unauthorized")
        first = await anext(follow(url, "S", token="right"))
        assert isinstance(first.event, SessionStarted)


# Stands for `pip install motionledger` without the server extra: those imports fail.
PRODUCER_ONLY = """
import sys
for name in ("asyncpg", "structlog", "prometheus_client", "litestar", "uvicorn", "rich"):
    sys.modules[name] = None
from motionledger.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def _command(settings: Settings, cwd: Path, *args: str, lines: int) -> tuple[list[str], str]:
    """`motionledger follow ...` on a producer-only install; its first `lines` lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
    env.update(
        MOTIONLEDGER_HTTP_PORT=str(settings.http_port),
        MOTIONLEDGER_API_TOKEN=settings.api_token or "",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PRODUCER_ONLY,
        "follow",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out = [
        (await asyncio.wait_for(process.stdout.readline(), 60)).decode().rstrip("\n")
        for _ in range(lines)
    ]
    process.terminate()
    await process.wait()
    return out, (await process.stderr.read()).decode()


async def test_the_follow_command_on_a_producer_only_install(
    serve_api: ServeApi, tmp_path: Path, nc: Client
) -> None:
    async with serve_api(token="cli-token") as api:
        settings = api.res.settings
        started = await api.post(
            "session/start", {"sessionId": "S", "sessionType": "photoshoot_performance"}
        )
        assert started.status == 200
        events = [
            ev.director("S", 1_764_500_030_025, "cut", cameraId="cam-hero", reason="motion peak"),
            ev.music("S", 1_764_500_030_100, section="drop", tempo=128.0),
        ]
        await ev.publish_events(nc.jetstream(), settings.subject_root, events)
        pool = api.res.pool
        assert pool is not None
        await until_logged(pool, events[-1]["eventId"])
        log = await logged(pool, "S")

        machine, _ = await _command(settings, tmp_path, "S", "--json", lines=3)
        assert [json.loads(x) for x in machine] == [
            {"position": p, "event": body} for p, _, body in log
        ]
        after, _ = await _command(settings, tmp_path, "S", "--json", "--after", str(log[0][0]),
                                  lines=2)  # fmt: skip
        assert [json.loads(x)["position"] for x in after] == [p for p, _, _ in log[1:]]
        readable, stderr = await _command(settings, tmp_path, "S", lines=3)
        assert "following S at http://127.0.0.1:" in stderr
        assert readable[0].startswith(f"#{log[0][0]} ")
        assert "session.started" in readable[0]
        assert "sessionType=photoshoot_performance" in readable[0]
        assert readable[1] == (
            f"#{log[1][0]:<8} 10:53:50.025Z  director.event         eventType=cut "
            'cameraId=cam-hero reason="motion peak"'
        )
        assert readable[2].split()[2:4] == ["music.moment", "section=drop"]
