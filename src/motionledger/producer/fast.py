"""The producer's opt-in fast path: acks from the protocol parser, publishes as raw commands.

Acks are read straight from nats-py's parser (the tap the ingest puller uses, tap.py), with
one wildcard inbox and a counter per message: no `Msg` object, no task and no timer per
publish. Publishes are written as HPUB protocol commands built once per event. Both hook
nats-py internals, checked when the producer starts: an unsupported nats-py fails then,
with a message, instead of misbehaving later. Same guarantees as the public path (the
bookkeeping — window, fence, retries, duplicates — is the Producer's).
"""

from __future__ import annotations

import contextlib
from typing import Final, Protocol

import msgspec
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError, MaxPayloadError
from nats.errors import Error as NatsError

from ..adapters.nats.replies import STATUS_OFFSET
from ..adapters.nats.tap import UnsupportedClient, tap_messages
from .wire import REPLY, InFlight, PublishError, hpub


class Settles(Protocol):
    """What the fast path tells the Producer (client.Producer) about each publish."""

    def pending(self, token: int) -> InFlight | None: ...
    def fail(self, pending: InFlight, error: Exception) -> None: ...
    def retry_later(self, pending: InFlight) -> None: ...
    def refused(self, pending: InFlight, description: str) -> None: ...
    def acknowledged(self, pending: InFlight, stream: str, seq: int, duplicate: bool) -> None: ...


_RAW_WRITES: Final = ("_send_command", "_flush_queue", "_flush_pending", "_max_payload")


class FastPath:
    def __init__(self, client: Client, producer: Settles) -> None:
        self._client = client
        self._producer = producer
        self._prefix = ""
        self._sub: Subscription | None = None
        self._raw = False  # write protocol commands directly (else nats-py's publish)

    async def start(self) -> None:
        missing = [name for name in _RAW_WRITES if not hasattr(self._client, name)]
        if missing:
            raise UnsupportedClient(
                f"the producer's fast path needs nats-py internals this nats-py lacks "
                f"({', '.join(missing)}); use the default path (fast_path=False)"
            )
        self._raw = True
        taps = tap_messages(self._client)  # raises UnsupportedClient on a changed parser
        self._prefix = self._client.new_inbox()
        self._sub = await self._client.subscribe(f"{self._prefix}.*")
        taps[self._sub._id] = self._on_reply

    async def close(self) -> None:
        if self._sub is None:
            return
        tap_messages(self._client).pop(self._sub._id, None)
        if not self._client.is_closed:
            with contextlib.suppress(NatsError):
                await self._sub.unsubscribe()
        self._sub = None

    async def write(self, pending: InFlight) -> None:
        client = self._client
        producer = self._producer
        if not client.is_connected:
            pending.resend_at = 0.0  # sent by the sweeper once reconnected
            return
        prepared = pending.prepared
        reply = f"{self._prefix}.{pending.token}"
        try:
            if not self._raw:
                await client.publish(
                    prepared.subject, prepared.body, reply=reply, headers=prepared.headers
                )
                return
            # nats-py's publish, less what `prepare` already guarantees (subject and header
            # validation, header encoding): half the client CPU per event at high rates
            if len(prepared.body) > client._max_payload:
                raise MaxPayloadError
            if not pending.command:
                pending.command = hpub(
                    prepared.subject, reply, prepared.event.event_id, prepared.body
                )
            client.stats["out_msgs"] += 1
            client.stats["out_bytes"] += len(prepared.body)
            await client._send_command(pending.command)
            if client._flush_queue is not None and client._flush_queue.empty():
                await client._flush_pending()
        except (ConnectionClosedError, MaxPayloadError) as error:
            producer.fail(pending, PublishError(f"cannot publish: {type(error).__name__}"))
        except NatsError:
            pending.resend_at = 0.0  # a reconnect in progress: try again shortly

    def _on_reply(self, subject: bytes, _reply: bytes, data: bytes, headers: bytes) -> None:
        # runs inside nats-py's read loop: nothing may raise out of here
        try:
            token = int(subject[len(self._prefix) + 1 :])
        except ValueError:
            return
        producer = self._producer
        pending = producer.pending(token)
        if pending is None:
            return  # the ack of an earlier attempt of something already acknowledged
        if headers and not data:
            code = headers[STATUS_OFFSET : STATUS_OFFSET + 3]
            if code == b"503":  # no responders: the stream is not (yet) there; try again
                producer.retry_later(pending)
                return
        try:
            reply = REPLY.decode(data)
        except msgspec.DecodeError:
            producer.fail(pending, PublishError(f"unreadable ack: {data[:200]!r}"))
            return
        if reply.error is not None:
            if reply.error.code == 503:  # JetStream briefly unavailable (e.g. restarting)
                producer.retry_later(pending)
                return
            producer.refused(pending, reply.error.description or str(reply.error.code))
            return
        producer.acknowledged(pending, reply.stream, reply.seq, reply.duplicate)
