"""The producer SDK: publish typed events to the ledger, many in flight, none lost or doubled.

    from motionledger.producer import DirectorEvent, connect, make_event

    async with connect("nats://127.0.0.1:4222") as producer:
        cut = make_event(DirectorEvent, session_id="S1", timestamp_ms=t, event_type="cut")
        ack = await producer.publish(cut)          # waits for the stream's ack
        acks = await producer.publish_many(cuts)   # pipelined: many in flight at once

What it does for a producer:
- fills `eventId` (a UUIDv7) when it is absent, and checks the event against its schema
  before anything is sent (an invalid event raises `InvalidEvent`; nothing is published);
- publishes on `<root>.<lane>.<sessionId>` with `Nats-Msg-Id` = eventId;
- keeps up to `window` publishes in flight and waits for room beyond that (backpressure,
  never an unbounded buffer);
- resends on an ack timeout, a reconnect, or "no responders" (the stream not there yet,
  e.g. during a broker restart), always with the SAME eventId and Nats-Msg-Id: the broker
  drops the copy within its duplicate window and the ledger dedupes by eventId for good,
  so a retry is a no-op, never a second row;
- fences state-changing events (everything but director events and music moments): one
  is sent only once all before it are acknowledged, and nothing after it is sent before
  it is acknowledged. A resend after a fault therefore never lands a camera change before
  its camera or a session's events before the session; the high-rate lanes stay pipelined;
- tells a retry's duplicate from a reused eventId: an ack marked duplicate for an eventId
  this producer sent earlier with another body raises `EventIdReused` (the broker dropped
  this body); one it cannot vouch for is acknowledged with `Ack.unverified` (sent.py).

By default it uses nats-py's public JetStream API (`js.publish`, one request per event,
`window` of them in flight), so a nats-py upgrade cannot break a producer. `fast_path=True`
opts into the raw protocol path (fast.py): acks read straight from the client's parser and
publishes written as protocol commands — about half the client CPU per event, which
matters only for bulk loads far beyond a shoot's rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.errors import ConnectionClosedError, MaxPayloadError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import APIError

from ..domain.events import DECODER, ENCODER, AnyEvent, subject_for
from ..domain.uuid7 import uuid7
from .fast import FastPath
from .sent import SentBodies
from .wire import (
    PIPELINED,
    Ack,
    EventIdReused,
    EventLike,
    InFlight,
    InvalidEvent,
    Prepared,
    ProducerStats,
    PublishError,
)

# stdlib logging: the host application decides where an SDK's records go
log = logging.getLogger(__name__)


class Producer:
    """Publishes events on an existing nats-py client; `connect()` makes one for you."""

    def __init__(
        self,
        client: Client,
        *,
        subject_root: str = "production",
        window: int = 1024,
        ack_timeout: float = 5.0,
        give_up_after: float = 120.0,
        max_event_bytes: int = 262_144,
        fence: bool = True,
        fast_path: bool = False,
    ) -> None:
        self._client = client
        self._root = subject_root
        self._window = window
        self._ack_timeout = ack_timeout
        self._give_up_after = give_up_after
        self._max_event_bytes = max_event_bytes
        self._fence_enabled = fence
        self._fast: FastPath | None = FastPath(client, self) if fast_path else None
        self._js: JetStreamContext | None = None
        self._pending: dict[int, InFlight] = {}  # insertion order = send order
        self._tokens = itertools.count(1)
        self._sent = SentBodies()
        self._sweeper: asyncio.Task[None] | None = None
        self._room = asyncio.Event()  # set while fewer than `window` are in flight
        self._idle = asyncio.Event()  # set while nothing is in flight
        self._gate = asyncio.Event()  # cleared while a fenced event is on its way
        self._fence_lock = asyncio.Lock()
        self._reconnects = 0
        self.stats = ProducerStats()

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> Producer:
        if self._fast is not None:
            await self._fast.start()
        else:
            self._js = self._client.jetstream()
        self._reconnects = self._client.stats["reconnects"]
        self._room.set()
        self._idle.set()
        self._gate.set()
        self._sweeper = asyncio.ensure_future(self._sweep())
        return self

    async def close(self, *, drain: bool = True) -> None:
        """Wait for what is in flight (unless `drain` is False), then stop."""
        if drain:
            await self.flush()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for pending in list(self._pending.values()):
            self.fail(pending, PublishError("producer closed before the stream acknowledged"))
        if self._fast is not None:
            await self._fast.close()

    async def __aenter__(self) -> Producer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close(drain=exc[0] is None)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def fast_path(self) -> bool:
        return self._fast is not None

    # -- publishing -------------------------------------------------------------------
    async def publish(self, event: EventLike) -> Ack:
        """Publish one event and wait for the stream's ack."""
        return await (await self.submit(event))

    async def submit(self, event: EventLike) -> asyncio.Future[Ack]:
        """Send one event once there is room; the future resolves with its ack."""
        return await self.send_prepared(self.prepare(event))

    async def publish_many(
        self, events: Iterable[EventLike] | AsyncIterable[EventLike]
    ) -> list[Ack]:
        """Publish in order, many in flight; return every ack (in order) once all are in.

        A list or tuple is checked as a whole first: one invalid event, nothing published.
        If any publish fails, the first failure is raised after the others have settled.
        """
        futures: list[asyncio.Future[Ack]] = []
        try:
            if isinstance(events, Sequence):
                for prepared in [self.prepare(e) for e in events]:
                    futures.append(await self.send_prepared(prepared))
            elif isinstance(events, AsyncIterable):
                async for event in events:
                    futures.append(await self.submit(event))
            else:
                for event in events:
                    futures.append(await self.submit(event))
        finally:
            if futures:
                await asyncio.wait(futures)
        failures = [f.exception() for f in futures if f.exception() is not None]
        if failures:
            raise PublishError(f"{len(failures)} of {len(futures)} events not published") from (
                failures[0]
            )
        return [f.result() for f in futures]

    async def flush(self) -> None:
        """Until everything sent so far is acknowledged (or has failed)."""
        while self._pending:
            self._idle.clear()
            await self._idle.wait()

    def prepare(self, event: EventLike) -> Prepared:
        """Fill the eventId, encode, and check against the schema: the wire form."""
        if isinstance(event, Mapping):
            fields = dict(event)
            fields.setdefault("eventId", uuid7())
            try:
                typed: AnyEvent = msgspec.convert(fields, AnyEvent)
            except msgspec.ValidationError as error:
                raise InvalidEvent(str(error)) from None
        else:
            typed = event  # type: ignore[assignment]
            if not typed.event_id:
                typed = msgspec.structs.replace(typed, event_id=uuid7())
        body = ENCODER.encode(typed)
        if len(body) > self._max_event_bytes:
            raise InvalidEvent(f"event is {len(body)} bytes, limit {self._max_event_bytes}")
        try:
            DECODER.decode(body)  # the ledger's own check, before the ledger has to reject it
        except msgspec.ValidationError as error:
            raise InvalidEvent(str(error)) from None
        subject = subject_for(self._root, typed)
        fenced = self._fence_enabled and not isinstance(typed, PIPELINED)
        return Prepared(typed, subject, body, fenced)

    async def send_prepared(self, prepared: Prepared) -> asyncio.Future[Ack]:
        """`submit` for an event prepared ahead (e.g. a batch checked as a whole first)."""
        if self._sweeper is None:
            raise PublishError("producer not started (use `async with` or `await start()`)")
        if prepared.fenced:
            async with self._fence_lock:
                self._gate.clear()
                try:
                    await self.flush()
                    future = await self._start(prepared)
                    await asyncio.wait([future])
                finally:
                    self._gate.set()
            return future
        while not self._gate.is_set() or len(self._pending) >= self._window:
            if not self._gate.is_set():
                await self._gate.wait()
            else:
                self._room.clear()
                await self._room.wait()
        return await self._start(prepared)

    async def _start(self, prepared: Prepared) -> asyncio.Future[Ack]:
        now = time.monotonic()
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        pending = InFlight(
            next(self._tokens),
            prepared,
            future,
            give_up_at=now + self._give_up_after,
            resend_at=now + self._ack_timeout,
        )
        pending.prior = self._sent.record(prepared.event.event_id, prepared.body)
        self._pending[pending.token] = pending
        self._idle.clear()
        if len(self._pending) >= self._window:
            self._room.clear()
        await self._write(pending)
        return future

    async def _write(self, pending: InFlight) -> None:
        if self._fast is not None:
            await self._fast.write(pending)
        elif pending.task is None:
            pending.task = asyncio.ensure_future(self._request(pending))

    async def _request(self, pending: InFlight) -> None:
        """The public-API path: one JetStream publish request, its outcome settled here."""
        prepared = pending.prepared
        assert self._js is not None
        # a request's late ack is dropped once it timed out: each retry waits twice as long
        # (up to 30 s), so an ack timeout set below the round trip still converges
        ceiling = max(self._ack_timeout, 30.0)
        timeout = min(self._ack_timeout * 2 ** min(pending.attempts - 1, 20), ceiling)
        try:
            ack = await self._js.publish(
                prepared.subject, prepared.body, timeout=timeout, headers=prepared.headers
            )
        except (ConnectionClosedError, MaxPayloadError) as error:
            self.fail(pending, PublishError(f"cannot publish: {type(error).__name__}"))
        except APIError as error:  # the stream's answer: an error, not an ack
            if error.code == 503:  # JetStream briefly unavailable (e.g. restarting)
                self.retry_later(pending)
            else:
                self.refused(pending, error.description or str(error.code))
        except (NatsTimeout, TimeoutError, NatsError):
            # no ack in time, no responders (stream not there yet), a reconnect: send again
            self.retry_later(pending, backoff=False)
        else:
            self.acknowledged(pending, ack.stream, ack.seq, bool(ack.duplicate))
        finally:
            pending.task = None

    # -- outcomes (both paths) ------------------------------------------------------------
    def pending(self, token: int) -> InFlight | None:
        return self._pending.get(token)

    def acknowledged(self, pending: InFlight, stream: str, seq: int, duplicate: bool) -> None:
        if pending.token not in self._pending:
            return  # an earlier attempt's ack of something already settled
        unverified = False
        if duplicate:
            if pending.prior == "different":
                self.fail(
                    pending,
                    EventIdReused(
                        f"eventId {pending.prepared.event.event_id} was already published by "
                        "this producer with a different body; the broker dropped this one "
                        "(use a new eventId for a changed event)"
                    ),
                )
                return
            # a retry's copy of our own send, or a re-publish of a body we sent: expected
            unverified = pending.prior == "unknown" and pending.attempts == 1
            self.stats.duplicates += 1
            if unverified:
                self.stats.unverified_duplicates += 1
                log.warning(
                    "the broker already held eventId %s from another sender; if its body "
                    "differed, this event is not in the ledger",
                    pending.prepared.event.event_id,
                    extra={"event_id": pending.prepared.event.event_id, "seq": seq},
                )
        self.stats.published += 1
        self._settle(pending)
        pending.future.set_result(Ack(stream, seq, duplicate, unverified))

    def refused(self, pending: InFlight, description: str) -> None:
        self.fail(pending, PublishError(f"stream refused the event: {description}"))

    def retry_later(self, pending: InFlight, *, backoff: bool = True) -> None:
        """Send again once the sweeper gets to it (after a backoff, or at once)."""
        delay = min(2.0, 0.05 * float(2 ** min(pending.attempts, 6))) if backoff else 0.0
        pending.resend_at = time.monotonic() + delay

    def _settle(self, pending: InFlight) -> None:
        del self._pending[pending.token]
        if len(self._pending) < self._window:
            self._room.set()
        if not self._pending:
            self._idle.set()

    def fail(self, pending: InFlight, error: Exception) -> None:
        if pending.token in self._pending:
            self._settle(pending)
        if pending.task is not None and pending.task is not asyncio.current_task():
            pending.task.cancel()
        if not pending.future.done():
            self.stats.failed += 1
            pending.future.set_exception(error)
            pending.future.exception()  # retrieved here: a caller may never await it

    async def _sweep(self) -> None:
        tick = min(0.05, self._ack_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            if not self._pending:
                continue
            if self._client.is_closed:
                for pending in list(self._pending.values()):
                    self.fail(pending, PublishError("connection closed"))
                continue
            if not self._client.is_connected:
                continue
            reconnects = self._client.stats["reconnects"]
            resend_all = reconnects != self._reconnects and self._fast is not None
            self._reconnects = reconnects
            if resend_all:
                # whatever was written to the old connection may be gone: go back and send
                # everything unacknowledged again, in order (duplicates are dropped); the
                # public path's requests time out and resend by themselves
                log.warning(
                    "resending %d unacknowledged events after a reconnect",
                    len(self._pending),
                    extra={"in_flight": len(self._pending)},
                )
            now = time.monotonic()
            for pending in list(self._pending.values()):
                if pending.token not in self._pending:
                    continue  # acknowledged while an earlier one was being resent
                if now >= pending.give_up_at:
                    self.fail(
                        pending,
                        PublishError(f"no ack after {self._give_up_after:.0f}s of retries"),
                    )
                elif pending.task is None and (resend_all or now >= pending.resend_at):
                    pending.attempts += 1
                    pending.resend_at = now + self._ack_timeout
                    self.stats.resent += 1
                    await self._write(pending)


@contextlib.asynccontextmanager
async def connect(
    servers: str | list[str] = "nats://127.0.0.1:4222",
    *,
    subject_root: str = "production",
    nats_options: Mapping[str, Any] | None = None,
    **producer_options: Any,
) -> AsyncIterator[Producer]:
    """A producer on its own connection, which reconnects for as long as it takes."""
    urls = [u.strip() for u in servers.split(",")] if isinstance(servers, str) else servers
    options: dict[str, Any] = {
        "name": "motionledger-producer",
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "connect_timeout": 2,
    }
    options.update(nats_options or {})
    client = await nats.connect(urls, **options)
    try:
        async with Producer(client, subject_root=subject_root, **producer_options) as producer:
            yield producer
    finally:
        await client.close()
