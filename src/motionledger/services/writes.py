"""Writes over HTTP: build the event, check it as the judge will, publish it on the stream
like any producer, and wait (event-driven, see `services.waiters`) for the verdict."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Final, NamedTuple

import msgspec
from nats.aio.client import Client

from .. import logs
from ..adapters.nats import broker
from ..adapters.postgres import ledger
from ..adapters.postgres.database import Pool
from ..domain.decoding import Decoded, decode_event, too_large
from ..domain.events import DECODER, Event, subject_for
from ..domain.judge import Prior
from ..domain.projections import FED_BY
from ..domain.reasons import unprocessable
from ..domain.requests import same_request
from ..errors import BrokerUnavailable, Conflict, DatabaseUnavailable, Refused, Unavailable
from ..settings import Settings
from .waiters import Outcome, Waiters

log = logs.get(__name__)
_ENCODER: Final = msgspec.json.Encoder()
_NO_SEQUENCE: Final = -1  # a waiter for an event already logged: no dead letter to look for


class Submission(NamedTuple):
    """An event a write asks for, and which of its fields the server filled in (ids the
    client left out: a retry need not repeat them, and they are not compared)."""

    event: Event
    filled: frozenset[str] = frozenset()


def _projection(event: Event) -> str:
    return FED_BY[type(event)].name


def _as_logged(submission: Submission, prior: Prior) -> Event:
    """The event its eventId was judged as, if the write asks for that very event; else
    the write is a Conflict."""
    event = submission.event
    logged: Event | None = None
    if prior.body is not None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            logged = DECODER.decode(prior.body)  # raw bytes that were not an event: none
    if logged is None or not same_request(event, logged, submission.filled):
        raise Conflict(
            "event_id_reused",
            f"eventId {event.event_id} was used before for another event; a retry sends the "
            "same body (give a new event a new eventId)",
        )
    return logged


def _with_event(future: asyncio.Future[Outcome], event: Event) -> asyncio.Future[Outcome]:
    """`future`'s outcome, carrying the event as logged."""
    out: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[Outcome]) -> None:
        if out.done():
            return
        if done.cancelled():
            out.cancel()
        else:
            out.set_result(replace(done.result(), event=event))

    future.add_done_callback(settle)
    out.add_done_callback(lambda o: future.cancel() if o.cancelled() else None)
    return out


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
        """The session a still belongs to, from the log (the read table may lag). A still
        whose creation is in the stream but not judged yet is waited for: everything the
        stream holds now is judged first (within the write wait budget, else 503)."""
        owner = await ledger.still_session(self._pool, still_id)
        if owner is not None:
            return owner
        stream = await broker.stream_position(self._js, self._settings.stream)
        judged = self._waiters.until_judged(stream.last_seq)
        try:
            await asyncio.wait_for(judged, self._budget_s)
        except TimeoutError:
            raise Unavailable(
                f"the ledger has not judged the stream up to sequence {stream.last_seq} yet; "
                "try again"
            ) from None
        return await ledger.still_session(self._pool, still_id)

    async def submit(self, submissions: Sequence[Submission]) -> list[Outcome | None]:
        """Publish in order, then wait for every verdict; None where the budget ran out.

        A write whose eventId was judged before (a retry after a timeout, say) is not sent
        again: it answers what the first copy was answered, with the event as logged. A write
        that names such an eventId for another event is a Conflict, and nothing is sent."""
        events = [s.event for s in submissions]
        bodies = [self.body_of(event) for event in events]  # all checked before any is sent
        self.check_available()
        earlier = await self._judged_before(submissions)
        futures: list[asyncio.Future[Outcome]] = []
        fresh: list[int] = []
        for index, submission in enumerate(submissions):
            prior = earlier.get(submission.event.event_id)
            if prior is None:
                fresh.append(index)
                futures.append(asyncio.get_running_loop().create_future())  # set below
            else:
                futures.append(self._again(submission, prior))
        root = self._settings.subject_root
        outgoing = [
            broker.Outgoing(subject_for(root, events[i]), bodies[i], events[i].event_id)
            for i in fresh
        ]
        try:
            acks = await broker.publish_in_order(self._js, self._settings.stream, outgoing)
        except BrokerUnavailable as error:
            log.warning("write_publish_failed", error=str(error) or repr(error))
            raise BrokerUnavailable(f"the broker did not take the event: {error}") from error
        doubled: set[int] = set()  # the broker had this Nats-Msg-Id already: its first copy's
        for index, ack in zip(fresh, acks, strict=True):
            event = events[index]
            futures[index] = self._waiters.watch(event.event_id, ack.seq, _projection(event))
            if ack.duplicate:
                doubled.add(index)
        outcomes = await self._waiters.wait_all(futures, self._budget_s)
        # answered by another copy's log row (the broker's, or a later duplicate): hold it
        # to this request before answering with it
        doubled |= {i for i in fresh if (o := outcomes[i]) is not None and o.other_copy}
        if doubled:
            await self._check_doubled(submissions, outcomes, sorted(doubled))
        return outcomes

    async def _judged_before(self, submissions: Sequence[Submission]) -> dict[str, Prior]:
        """How the eventIds the client gave were judged before, if they were."""
        given = [s.event.event_id for s in submissions if "event_id" not in s.filled]
        if not given:
            return {}
        return await ledger.priors(self._pool, given, self._settings.max_event_bytes)

    def _again(self, submission: Submission, prior: Prior) -> asyncio.Future[Outcome]:
        """The answer to a write whose eventId was judged before: the first verdict."""
        logged = _as_logged(submission, prior)
        event = submission.event
        if prior.rejection is None:  # answered once it is visible, with the logged ids
            future = self._waiters.watch(event.event_id, _NO_SEQUENCE, _projection(event))
            return _with_event(future, logged)
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        done.set_result(Outcome(reason=prior.rejection.reason, detail=prior.rejection.detail))
        return done

    async def _check_doubled(
        self,
        submissions: Sequence[Submission],
        outcomes: list[Outcome | None],
        doubled: list[int],
    ) -> None:
        """Within its duplicate window the broker drops a second copy of a Nats-Msg-Id
        whatever its body, and acks it as the first: hold the first copy to this request."""
        decided = [i for i in doubled if outcomes[i] is not None]
        earlier = await ledger.priors(
            self._pool,
            [submissions[i].event.event_id for i in decided],
            self._settings.max_event_bytes,
        )
        for index in decided:
            prior = earlier.get(submissions[index].event.event_id)
            if prior is None:
                continue  # judged, but neither logged nor binding: nothing to hold it to
            logged = _as_logged(submissions[index], prior)
            outcome = outcomes[index]
            if outcome is not None and prior.rejection is None:
                outcomes[index] = replace(outcome, event=logged)
