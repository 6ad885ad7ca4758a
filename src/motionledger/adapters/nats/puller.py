"""Pulling the stream in order, as raw messages, with nothing per message but the parse.

The ledger keeps its place in the stream in Postgres, so the broker-side consumer needs no
acknowledgements: a durable AckNone pull consumer, created at the committed sequence + 1
on every (re)start. Messages are taken straight from nats-py's protocol parser (a tap on
the client's message dispatch for one subscription id): no `Msg` object, no header
parsing, no JetStream bookkeeping per message. That per-message Python work is what binds
a plain nats-py consumer; skipping it leaves the parser as the client's cost.

Anything unexpected — a sequence gap (messages lost on a reconnect), a deleted consumer,
a silent stall after a broker restart (nats.py issue #504) — surfaces as `PullBroken`, and
the ingest loop restarts from the committed checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ... import logs, metrics
from ...errors import PullBroken
from . import broker
from .errors import translating
from .replies import StatusKind, parse_ack_subject, parse_status
from .tap import tap_messages

log = logs.get(__name__)


@dataclass(slots=True)
class RawMessage:
    seq: int  # stream sequence
    subject: str
    data: bytes
    headers: bytes  # the raw NATS header block, b"" when there is none
    published_ns: int  # the broker's timestamp

    def header_map(self) -> dict[str, list[str]]:
        """Headers as a mapping, parsed only when needed (dead letters)."""
        out: dict[str, list[str]] = {}
        lines = self.headers.decode("utf-8", "replace").split("\r\n")[1:]
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                out.setdefault(name.strip(), []).append(value.strip())
        return out


class _PullRequest(msgspec.Struct, omit_defaults=True):
    batch: int
    expires: int  # ns
    idle_heartbeat: int  # ns


class Puller:
    """In-order raw messages from `stream`, starting at `start_seq`."""

    def __init__(
        self,
        client: Client,
        stream: str,
        consumer: str,
        *,
        batch: int,
        expires_s: float = 5.0,
        heartbeat_s: float = 1.0,
    ) -> None:
        self._client = client
        self._js: JetStreamContext = client.jetstream(timeout=broker.API_TIMEOUT_S)
        self._stream = stream
        self._consumer = consumer
        self._batch = batch
        self._request = msgspec.json.encode(
            _PullRequest(2 * batch, int(expires_s * 1e9), int(heartbeat_s * 1e9))
        )
        self._stall_after = 3 * heartbeat_s
        self._buffer: deque[RawMessage] = deque()
        self._arrived = asyncio.Event()
        self._credit = 0  # messages asked for and neither received nor expired
        self._expected = 0  # next stream sequence we must see
        self._last_activity = time.monotonic()
        self._broken: str | None = None
        self._woken = False
        self._fresh = False
        # messages the broker still holds for us beyond the last one delivered
        self.stream_pending = 0
        self._sub: Subscription | None = None
        self._inbox = ""
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"

    @translating
    async def open(self, start_seq: int, first_seq: int) -> None:
        """(Re)create the consumer at `start_seq` and start pulling."""
        await self.close()
        with contextlib.suppress(NotFoundError):
            await self._js.delete_consumer(self._stream, self._consumer)
        await self._js.add_consumer(
            self._stream,
            ConsumerConfig(
                durable_name=self._consumer,
                description="motionledger ingest: position kept in Postgres, no acks",
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start_seq,
                ack_policy=AckPolicy.NONE,
                max_waiting=64,
            ),
        )
        if first_seq > start_seq:
            log.error(
                "stream_messages_expired_before_ingest",
                stream=self._stream,
                from_seq=start_seq,
                to_seq=first_seq - 1,
            )
        self._expected = max(start_seq, first_seq)
        self._fresh = True  # the first delivery may skip what the broker no longer has
        self._buffer.clear()
        self._broken = None
        self._credit = 0
        self._inbox = self._client.new_inbox()
        self._sub = await self._client.subscribe(self._inbox)
        tap_messages(self._client)[self._sub._id] = self._on_message
        self._last_activity = time.monotonic()

    async def close(self) -> None:
        if self._sub is None:
            return
        sub, self._sub = self._sub, None
        tap_messages(self._client).pop(sub._id, None)
        if not self._client.is_closed:
            try:
                await sub.unsubscribe()
            except Exception as error:  # a dead connection: nothing to unsubscribe from
                log.debug("unsubscribe_failed", error=str(error))

    def wake(self) -> None:
        """Make a waiting `next_batch` return now (with what it has, possibly nothing)."""
        self._woken = True
        self._arrived.set()

    def backlog_after(self, committed_seq: int) -> int:
        """Messages in the stream past `committed_seq`: delivered to us or still held back."""
        return self.stream_pending + max(0, self._expected - 1 - committed_seq)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _on_message(self, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        # Runs inside nats-py's protocol parser: an exception here would stop the client's
        # read loop, so none may escape; the ingest loop starts over instead.
        try:
            self._take(subject, reply, data, headers)
        except Exception as error:
            self._broken = f"undeliverable message: {error!r}"
        self._arrived.set()

    def _take(self, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        self._last_activity = time.monotonic()
        if reply:
            seq, published_ns, pending = parse_ack_subject(reply)
            self._credit -= 1
            if seq < self._expected:
                return  # delivered again after a broker restart: already have it
            if seq > self._expected:
                if not self._fresh:
                    # messages lost in transit (a reconnect): start over from the checkpoint
                    self._broken = f"sequence gap: expected {self._expected}, got {seq}"
                    return
                # The consumer was just created at `_expected`: the broker no longer has
                # what lies between (deleted or expired). Say so loudly and go on.
                metrics.STREAM_GAPS.inc(seq - self._expected)
                log.error(
                    "stream_messages_missing",
                    stream=self._stream,
                    from_seq=self._expected,
                    to_seq=seq - 1,
                )
            self._fresh = False
            self._expected = seq + 1
            self.stream_pending = pending
            # NATS does not require subjects to be UTF-8; the dead letter keeps the raw body
            text = subject.decode("utf-8", "replace")
            self._buffer.append(RawMessage(seq, text, data, headers, published_ns))
        else:
            self._on_status(headers)

    def _on_status(self, headers: bytes) -> None:
        status = parse_status(headers)
        if status.kind is StatusKind.HEARTBEAT:
            return  # the pull is alive
        if status.kind is StatusKind.ENDED:
            # the request is over; the messages it did not deliver are no longer owed
            if status.undelivered is None:
                self._credit = 0
            else:
                self._credit -= status.undelivered
            return
        self._broken = f"consumer status {status.code} {status.description}".rstrip()

    @translating
    async def _ask(self) -> None:
        if self._credit < self._batch:
            await self._client.publish(self._api, self._request, reply=self._inbox)
            self._credit += 2 * self._batch

    async def next_batch(self, timeout: float) -> list[RawMessage]:
        """Up to `batch` messages, in stream order; [] when none came within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            # what arrived before the break is complete and in order: hand it out first
            if self._broken is not None and not self._buffer:
                raise PullBroken(self._broken)
            if self._buffer:
                take = min(len(self._buffer), self._batch)
                out = [self._buffer.popleft() for _ in range(take)]
                await self._ask()
                return out
            await self._ask()
            now = time.monotonic()
            if now - self._last_activity > self._stall_after:
                # nothing at all, not even a heartbeat: the pull request is gone (#504)
                log.warning(
                    "pull_stalled", stream=self._stream, idle_s=round(now - self._last_activity, 1)
                )
                self._last_activity = now
                self._credit = 0
                continue
            remaining = deadline - now
            if remaining <= 0 or self._woken:
                self._woken = False
                return []
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, self._stall_after))


def consumer_name(stream: str) -> str:
    return f"motionledger-{stream}".replace(".", "_")
