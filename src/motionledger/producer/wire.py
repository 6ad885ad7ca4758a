"""What travels: the checked event in its wire form, the stream's ack, and the errors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec

from ..domain.events import AnyEvent, DirectorEvent, Event, MusicMoment
from ..domain.uuid7 import uuid7

E = TypeVar("E", bound=Event)
EventLike = Event | Mapping[str, Any]

# Lanes published at rate and independent of each other's order; the rest are fenced.
PIPELINED: Final = (DirectorEvent, MusicMoment)


class PublishError(Exception):
    """An event could not be published (the broker refused it, or retries ran out)."""


class InvalidEvent(PublishError, ValueError):
    """The event fails its schema or is too large: nothing was published."""


class EventIdReused(PublishError):
    """The broker dropped this event as a duplicate of a message with the same eventId that
    this producer sent earlier with a DIFFERENT body: this body is not in the stream, and
    the ledger will never see it. Give the changed event a new eventId."""


class Ack(msgspec.Struct, frozen=True):
    """The stream's acknowledgement: where the event sits.

    `duplicate`: the broker already held a message with this eventId (within its duplicate
    window) and dropped this copy. `unverified`: a duplicate this producer cannot vouch for
    — the earlier copy was not sent by this process (another producer, or this one before a
    restart), so its body may differ from this one; if it did, this body is not logged.
    A duplicate of a body this producer itself sent (a retry, a re-publish) is verified;
    one with a different body raises `EventIdReused` instead of acknowledging.
    """

    stream: str
    seq: int
    duplicate: bool = False
    unverified: bool = False


class JetStreamApiError(msgspec.Struct):
    """The `error` of a JetStream API reply (e.g. a publish the stream refused)."""

    code: int = 0
    err_code: int = 0
    description: str = ""


class Reply(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: JetStreamApiError | None = None


REPLY: Final = msgspec.json.Decoder(Reply)


def make_event(cls: type[E], **fields: Any) -> E:
    """`cls(**fields)` with a fresh UUIDv7 `event_id` unless one is given."""
    fields.setdefault("event_id", uuid7())
    return cls(**fields)


@dataclass(slots=True)
class InFlight:
    """A publish sent (or about to be) and not yet settled: acknowledged, refused or failed."""

    token: int
    prepared: Prepared
    future: asyncio.Future[Ack]
    give_up_at: float
    resend_at: float
    attempts: int = 1
    command: bytes = b""  # the HPUB protocol line and payload, built once, sent again as is
    task: asyncio.Task[None] | None = None  # the public-API path's request in flight
    prior: str = "unknown"  # how an earlier send of this eventId compared (see sent.py)


def hpub(subject: str, reply: str, event_id: str, body: bytes) -> bytes:
    """The NATS protocol command for a publish with its Nats-Msg-Id header. Subject tokens
    and the eventId are validated to `[A-Za-z0-9_-]` by `prepare`: nothing to escape."""
    header = b"NATS/1.0\r\nNats-Msg-Id: " + event_id.encode() + b"\r\n\r\n"
    size = len(header)
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
        subject.encode(),
        reply.encode(),
        size,
        size + len(body),
        header,
        body,
    )


@dataclass(slots=True)
class ProducerStats:
    published: int = 0  # acknowledged by the stream
    duplicates: int = 0  # ... of which the broker had already stored (a retry's copy)
    unverified_duplicates: int = 0  # ... of which the earlier copy was not sent by us
    resent: int = 0  # sends beyond the first
    failed: int = 0


@dataclass(slots=True)
class Prepared:
    """An event in its wire form, checked: made by `prepare`, sent by `send_prepared`."""

    event: AnyEvent
    subject: str
    body: bytes
    fenced: bool
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Nats-Msg-Id": self.event.event_id}
