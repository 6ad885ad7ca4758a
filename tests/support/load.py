"""A steady, mixed load from outside producers, for fault tests.

Plain nats-py, as another team's producer would write it (deliberately not the project's
own producer SDK, so a fault test checks the ledger and nothing of ours in front of it):
each session's events are published one after another, each retried — with the SAME
eventId and Nats-Msg-Id — until the stream acknowledges it, however long the broker is
away. So every event the load generated must end in the log exactly once, in its session's
order, and none may be dead-lettered.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from tests.support import events as ev


def session_script(session: str, rng: random.Random) -> Iterator[dict[str, Any]]:
    """An endless, valid shoot: cuts at rate, now and then cameras, stills, music, assets."""
    yield ev.session_started(session, status="rolling", title=f"load {session}")
    cameras = [f"cam{i}" for i in range(3)]
    for camera in cameras:
        yield ev.camera_upserted(session, camera, priorityWeight=rng.random())
    stills: list[str] = []
    clock = itertools.count(1_700_000_000_000, 40)
    for n in itertools.count():
        roll = rng.random()
        ts = next(clock)
        if roll < 0.70:
            yield ev.director(
                session, ts, rng.choice(["cut", "hold", "release"]), cameraId=rng.choice(cameras)
            )
        elif roll < 0.78:
            yield ev.music(session, ts, tempo=120.0 + rng.random(), section="build")
        elif roll < 0.84:
            yield ev.camera_state(session, rng.choice(cameras), isActive=rng.random() < 0.5)
        elif roll < 0.90:
            still = f"{session}-st{n}"
            stills.append(still)
            yield ev.still_created(
                session, still, rng.choice(cameras), timestampMs=ts, score=rng.random()
            )
        elif roll < 0.95 and stills:
            yield ev.still_updated(session, rng.choice(stills), isFavorite=True)
        elif roll < 0.98:
            yield ev.asset(session, f"{session}-a{n}")
        else:
            yield {
                "type": "session.updated",
                "eventId": ev.new_id(),
                "sessionId": session,
                "notes": f"note {n}",
            }


@dataclass
class Load:
    servers: list[str]
    root: str
    sessions: int = 4
    rate: float = 400.0  # events per second, all sessions together
    options: dict[str, Any] = field(default_factory=dict)  # creds, tls for nats.connect
    seed: int = 0
    sent: dict[str, list[str]] = field(default_factory=dict)  # session -> eventIds, acked
    retries: int = 0
    connection_errors: int = 0
    max_retry_s: float = 90.0  # one event not acknowledged for this long fails the load
    _started: float = 0.0

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.sent.values())

    def all_ids(self) -> set[str]:
        return {i for ids in self.sent.values() for i in ids}

    async def run(self, stop: asyncio.Event) -> None:
        async def quiet(_: Exception) -> None:
            self.connection_errors += 1  # expected while the broker is away

        client: Client = await nats.connect(
            self.servers,
            name="fault-load",
            error_cb=quiet,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            connect_timeout=2,
            ping_interval=2,
            max_outstanding_pings=2,
            **self.options,
        )
        tag = uuid.uuid4().hex[:6]
        self._started = time.monotonic()
        try:
            js = client.jetstream(timeout=2)
            await asyncio.gather(
                *(self._session(js, f"L{tag}{i}", i, stop) for i in range(self.sessions))
            )
        finally:
            await client.close()

    async def _session(
        self, js: JetStreamContext, session: str, index: int, stop: asyncio.Event
    ) -> None:
        rng = random.Random(self.seed * 1000 + index)
        ids = self.sent.setdefault(session, [])
        every = self.sessions / self.rate
        next_at = time.monotonic()
        for event in session_script(session, rng):
            if stop.is_set():
                return
            await self._publish(js, event)
            ids.append(event["eventId"])
            next_at += every
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()  # behind (an outage): do not burst to catch up
                await asyncio.sleep(0)

    async def _publish(self, js: JetStreamContext, event: dict[str, Any]) -> None:
        subject = ev.subject_of(self.root, event)
        body = msgspec.json.encode(event)
        headers = {"Nats-Msg-Id": event["eventId"]}
        deadline = time.monotonic() + self.max_retry_s
        while True:
            try:
                await js.publish(subject, body, headers=headers)
                return
            except (NatsError, TimeoutError, OSError) as error:
                self.retries += 1
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"event {event['eventId']} not acknowledged: {error!r}"
                    ) from error
                await asyncio.sleep(0.1)


class Running:
    """A load started in the background; `stop()` ends it after the event in hand is acked."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(load.run(self._stop))

    async def wait_count(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.load.count < count:
            if self._task.done():
                self._task.result()
            assert time.monotonic() < deadline, f"load stuck at {self.load.count} events"
            await asyncio.sleep(0.05)

    async def stop(self) -> Load:
        self._stop.set()
        await asyncio.wait_for(self._task, self.load.max_retry_s + 10)
        return self.load
