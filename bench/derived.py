"""Issue 14's figures: the derived reads over HTTP, beside the other query figures.

On the big session (1 M events): one-minute windows of cut-log, hero-windows and
alignment, each request a different minute of the session (20 minutes spread over it, in
turn); the same cut-log minutes as of a recorded time a minute of shoot after each one
(the ledger as it stood then), and the timeline as of recorded times spread over the
session, each against the same query without asOf. On a session of 100 k cuts that switch
camera often: a full page of cut-log (10 000 segments).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any, Final

import asyncpg

from motionledger.domain.events import CameraUpserted, DirectorEvent, Event, SessionStarted

from .queries import Client
from .stats import percentiles
from .workload import BASE_MS

MINUTE_MS: Final = 60_000
WINDOWS: Final = 20


def cut_session(cuts: int, *, seed: int) -> Iterator[Event]:
    """A session of `cuts` cuts among 8 cameras in a fast edit (about one in three names
    another camera than the one on air), with a hold now and then: ~30 k segments."""
    rnd = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    session = f"cuts-{seed}"
    cameras = [f"cam{n}" for n in range(1, 9)]
    ids = itertools.count()

    def new_id() -> str:
        return f"{session}-{next(ids):09d}"

    yield SessionStarted(event_id=new_id(), session_id=session, session_type="music_demo")
    for camera in cameras:
        yield CameraUpserted(
            event_id=new_id(),
            session_id=session,
            camera_id=camera,
            source_type="iphone",
            role="hero",
            priority_weight=1.0,
            is_active=True,
        )
    t, on_air = BASE_MS, cameras[0]
    for _ in range(cuts):
        t += rnd.randint(20, 60)
        if rnd.random() < 0.35:
            on_air = rnd.choice(cameras)
        yield DirectorEvent(
            event_id=new_id(),
            session_id=session,
            timestamp_ms=t,
            event_type="cut",
            camera_id=on_air,
        )
        if rnd.random() < 0.02:
            kind = "hold" if rnd.random() < 0.5 else "release"
            yield DirectorEvent(
                event_id=new_id(), session_id=session, timestamp_ms=t, event_type=kind
            )


async def _plan(database_url: str, session: str) -> dict[str, Any]:
    """Minutes spread over the session, and recorded times to ask asOf at."""
    conn = await asyncpg.connect(database_url)
    try:
        low, high = await conn.fetchrow(
            "SELECT min(timestamp_ms), max(timestamp_ms) FROM production.director_events"
            " WHERE session_id = $1",
            session,
        )
        head = await conn.fetchval("SELECT max(position) FROM ledger.events")

        async def recorded_after(timestamp_ms: int) -> int:
            """The recorded ms of the first event of the session at or after a time."""
            position = await conn.fetchval(
                "SELECT position FROM production.director_events WHERE session_id = $1"
                " AND timestamp_ms >= $2 ORDER BY timestamp_ms, position LIMIT 1",
                session,
                timestamp_ms,
            )
            return await _recorded_ms(conn, position or head)

        span = max(0, high - low - 2 * MINUTE_MS)  # a short session (--quick): overlapping
        starts = [low + span * i // WINDOWS for i in range(WINDOWS)]
        as_of = [await recorded_after(s + 2 * MINUTE_MS) for s in starts]
        spread = [await _recorded_ms(conn, head * (i + 1) // (WINDOWS + 1)) for i in range(20)]
        return {"starts": starts, "as_of": as_of, "timeline_as_of": spread}
    finally:
        await conn.close()


async def _recorded_ms(conn: asyncpg.Connection, position: int) -> int:
    value = await conn.fetchval(
        "SELECT floor(extract(epoch FROM recorded_at) * 1000)::bigint FROM ledger.events"
        " WHERE position = $1",
        position,
    )
    return int(value)


def _rotating(client: Client, path: str, params: list[dict[str, Any]], n: int) -> dict[str, float]:
    """Latencies (ms) of `n` requests after a warm-up, each with the next of `params`."""
    for p in params:
        client.get(path, p)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        client.get(path, params[i % len(params)])
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def _big(port: int, session: str, plan: dict[str, Any], n: int) -> dict[str, Any]:
    client = Client(port)
    try:
        minutes = [
            {"sessionId": session, "fromMs": s, "toMs": s + MINUTE_MS} for s in plan["starts"]
        ]
        then = [{**m, "asOf": at} for m, at in zip(minutes, plan["as_of"], strict=True)]
        timeline = [{"sessionId": session}]
        timeline_then = [{"sessionId": session, "asOf": at} for at in plan["timeline_as_of"]]
        _, sample = client.get("/production/cut-log", minutes[0])
        return {
            "segments_per_minute": len(sample["segments"]),
            "cut_log_minute": _rotating(client, "/production/cut-log", minutes, n),
            "hero_windows_minute": _rotating(client, "/production/hero-windows", minutes, n),
            "alignment_minute": _rotating(client, "/production/alignment", minutes, n),
            "cut_log_minute_as_of": _rotating(client, "/production/cut-log", then, n),
            "timeline": _rotating(client, "/production/session/timeline", timeline, n),
            "timeline_as_of": _rotating(client, "/production/session/timeline", timeline_then, n),
        }
    finally:
        client.close()


def _full_page(port: int, session: str, n: int) -> dict[str, Any]:
    client = Client(port)
    try:
        params = {"sessionId": session, "limit": 10_000}
        _, result = client.get("/production/cut-log", params)
        if len(result["segments"]) != 10_000:
            raise RuntimeError(f"a full page has {len(result['segments'])} segments")
        return {
            "segments": 10_000,
            "latency_ms": _rotating(client, "/production/cut-log", [params], n),
        }
    finally:
        client.close()


async def big_session_figures(
    port: int, database_url: str, session: str, *, n: int
) -> dict[str, Any]:
    plan = await _plan(database_url, session)
    return await asyncio.to_thread(_big, port, session, plan, n)


async def full_page_figures(port: int, session: str, *, n: int) -> dict[str, Any]:
    return await asyncio.to_thread(_full_page, port, session, n)
