"""Writes over HTTP: build the event, check it as the judge will, publish it on the stream
like any producer, and wait (event-driven, see `services.waiters`) for the verdict."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Final

import msgspec
from nats.aio.client import Client
from nats.js.api import PubAck

from .. import logs
from ..adapters.nats.errors import BROKER_FAILURES
from ..adapters.postgres import ledger
from ..adapters.postgres.database import Pool
from ..domain.decoding import Decoded, decode_event, too_large
from ..domain.events import Event, subject_for
from ..domain.projections import FED_BY
from ..domain.reasons import unprocessable
from ..errors import BrokerUnavailable, DatabaseUnavailable, Refused
from ..settings import Settings
from .waiters import Outcome, Waiters

log = logs.get(__name__)
PUBLISH_TIMEOUT_S: Final = 5.0
_ENCODER: Final = msgspec.json.Encoder()


class WriteService:
    def __init__(self, settings: Settings, client: Client, waiters: Waiters, pool: Pool) -> None:
        self._settings = settings
        self._client = client
        self._js = client.jetstream()
        self._waiters = waiters
        self._pool = pool
        self._budget_s = settings.write_wait_ms / 1000

    def body_of(self, event: Event) -> bytes:
        """The event's canonical body, or Refused for what the judge would refuse it for."""
        limit = self._settings.max_event_bytes
        try:
            # Sized below: the canonical body is what is published and what the judge
            # measures, and it may be the longer (1e300 becomes 301 digits) or the shorter.
            decoded = decode_event(_ENCODER.encode(event), sys.maxsize)
        except MemoryError:
            raise
        except Exception as error:  # what the judge would dead-letter as unprocessable
            log.exception("write_unprocessable", event_id=event.event_id)
            decoded = unprocessable("decoding", error)
        if isinstance(decoded, Decoded) and len(decoded.body) > limit:
            decoded = too_large(len(decoded.body), limit)
        if isinstance(decoded, Decoded):
            return decoded.body
        raise Refused(decoded.reason.value, decoded.detail)

    def check_available(self) -> None:
        """Raise now, before publishing, what would keep a write from being decided."""
        if not self._client.is_connected:
            raise BrokerUnavailable("the broker is not connected")
        if not self._waiters.ready:
            raise DatabaseUnavailable("the database is not reachable")

    async def still_session(self, still_id: str) -> str | None:
        """The session a still belongs to, from the log (the read table may lag)."""
        return await ledger.still_session(self._pool, still_id)

    async def submit(self, events: Sequence[Event]) -> list[Outcome | None]:
        """Publish in order, then wait for every verdict; None where the budget ran out."""
        bodies = [self.body_of(event) for event in events]  # all checked before any is sent
        self.check_available()
        try:
            acks = await self._publish_in_order(events, bodies)
        except BROKER_FAILURES as error:
            log.warning("write_publish_failed", error=str(error) or repr(error))
            raise BrokerUnavailable(f"the broker did not take the event: {error!r}") from error
        futures = [
            self._waiters.watch(event.event_id, ack.seq, FED_BY[type(event)].name)
            for event, ack in zip(events, acks, strict=True)
        ]
        return await self._waiters.wait_all(futures, self._budget_s)

    async def _publish_in_order(self, events: Sequence[Event], bodies: list[bytes]) -> list[PubAck]:
        publishes = [self._publish(e, b) for e, b in zip(events, bodies, strict=True)]
        try:
            # The first alone: nats-py sets up its reply subscription on a client's first
            # request, and may yield doing so. After that, publishes issued together are
            # written to the socket in the order issued: the stream keeps the batch's order.
            acks = [await publishes[0]] if publishes else []
        except BaseException:
            for unsent in publishes[1:]:
                unsent.close()
            raise
        return acks + list(await asyncio.gather(*publishes[1:]))

    def _publish(self, event: Event, body: bytes) -> Coroutine[Any, Any, PubAck]:
        return self._js.publish(
            subject_for(self._settings.subject_root, event),
            body,
            timeout=PUBLISH_TIMEOUT_S,
            stream=self._settings.stream,
            headers={"Nats-Msg-Id": event.event_id},
        )
