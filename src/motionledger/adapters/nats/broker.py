"""Connecting to NATS; creating the stream, or checking an existing one without rewriting it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from dataclasses import replace as with_changes
from typing import Any, Final, NamedTuple

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import NotFoundError

from ... import logs, metrics
from ...errors import BrokerUnavailable
from ...settings import Settings, seconds
from .errors import translating

log = logs.get(__name__)

# The daemon's reply subjects (pull deliveries, API answers) live under their own prefix, so
# a broker's permissions can give producers `_INBOX.>` for their publish acks without
# letting them listen in on the messages delivered to the ledger.
INBOX_PREFIX = "_INBOX_motionledger"
# JetStream API calls of the ingest loop (stream info, consumer set-up): short, so a call
# lost in an outage is retried soon after the broker returns
API_TIMEOUT_S = 2.0


def stream_config(settings: Settings) -> StreamConfig:
    """The stream the ledger reads: every lane under `<root>.>`, kept on disk."""
    return StreamConfig(
        name=settings.stream,
        description="motionledger: production events, judged into the Postgres log",
        subjects=[f"{settings.subject_root}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=seconds(settings.stream_max_age),
        max_msg_size=-1,
        num_replicas=settings.stream_replicas,
        duplicate_window=seconds(settings.duplicate_window),
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
    )


# Compared with an existing stream and reported when they differ, never changed: a stream
# an operator made is theirs (and on nats-server 2.9 a config update has crashed a cluster
# node replaying it after a restart). The ledger works with any of these values; the log in
# PostgreSQL, not the broker, is what keeps events and dedupes them for good.
_REPORTED = (
    "storage",
    "discard",
    "max_age",
    "max_msg_size",
    "num_replicas",
    "duplicate_window",
    "deny_delete",
    "deny_purge",
)


class StreamMissing(BrokerUnavailable):
    """The stream is not there and the ledger may not create it (stream_manage=false).

    A broker error to the ingest loop: it says so and tries again, until an operator (or
    their tooling) creates the stream."""


def _same(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, float) and isinstance(actual, int | float):
        return abs(wanted - actual) < 1e-3
    return bool(wanted == actual)


def _differences(want: StreamConfig, have: StreamConfig) -> dict[str, dict[str, str]]:
    return {
        name: {"ledger_default": str(getattr(want, name)), "stream": str(getattr(have, name))}
        for name in _REPORTED
        if not _same(getattr(want, name), getattr(have, name))
    }


def _covers(subjects: list[str] | None, root: str) -> bool:
    """Whether the stream takes every subject the ledger's events travel on."""
    return any(s in (f"{root}.>", ">") for s in subjects or [])


@translating
async def ensure_stream(js: JetStreamContext, settings: Settings) -> StreamInfo:
    """Create the stream when missing; of an existing one change only what the ledger
    cannot work without (its subjects must take `<root>.>`), and report the rest.

    With `stream_manage` off nothing is ever created or changed: a missing stream raises
    `StreamMissing` (the caller retries), anything unsuitable is logged as an error."""
    want = stream_config(settings)
    root = settings.subject_root
    try:
        info = await js.stream_info(settings.stream)
    except NotFoundError:
        if not settings.stream_manage:
            log.error(
                "stream_missing",
                stream=settings.stream,
                hint=f"MOTIONLEDGER_STREAM_MANAGE=false: create stream {settings.stream} "
                f"with subjects {root}.> (and retention limits); retrying",
            )
            raise StreamMissing(
                f"stream {settings.stream} does not exist and MOTIONLEDGER_STREAM_MANAGE=false"
            ) from None
        info = await js.add_stream(want)
        log.info("stream_created", stream=settings.stream, subjects=want.subjects)
        return info
    have = info.config
    differences = _differences(want, have)
    if differences:
        log.info("stream_settings_kept", stream=settings.stream, differences=differences)
    if have.retention not in (None, RetentionPolicy.LIMITS):
        # a work-queue or interest stream drops what the ingest consumer was sent before it
        # is committed: a crash then loses those events (reported as missing). The server
        # cannot change a stream's retention, so only the operator can fix it.
        log.error(
            "stream_retention_unsuitable",
            stream=settings.stream,
            retention=str(have.retention),
            hint="re-create the stream with retention limits",
        )
    if _covers(have.subjects, root):
        return info
    if not settings.stream_manage:
        log.error(
            "stream_subjects_unsuitable",
            stream=settings.stream,
            subjects=have.subjects,
            needed=f"{root}.>",
            hint="MOTIONLEDGER_STREAM_MANAGE=false: add the subject to the stream",
        )
        return info
    subjects = [*(have.subjects or []), f"{root}.>"]
    try:
        # the stream's own configuration with one subject added: nothing else is touched
        info = await js.update_stream(with_changes(have, subjects=subjects))
        log.warning("stream_subject_added", stream=settings.stream, subjects=subjects)
    except NatsError as error:  # e.g. the subject overlaps another stream's
        log.error("stream_update_refused", stream=settings.stream, error=str(error))
    return info


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.nats_tls_ca is None:
        return None
    context = ssl.create_default_context(cafile=settings.nats_tls_ca)
    return context


@translating
async def connect(
    settings: Settings,
    *,
    name: str = "motionledger",
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    attempts: int | None = None,
) -> Client:
    """A connection that never gives up reconnecting; health is reported, not fatal.

    With `attempts` (a one-shot command), each server is tried that many times more, then
    `BrokerUnavailable` says why, once: the tries are not logged one by one."""
    quiet = attempts is not None

    async def disconnected() -> None:
        metrics.BROKER_UP.set(0)
        if not quiet:
            log.warning("broker_disconnected")

    async def reconnected() -> None:
        metrics.BROKER_UP.set(1)
        log.info(
            "broker_reconnected",
            url=str(client.connected_url.netloc if client.connected_url else ""),
        )
        if on_reconnect is not None:
            await on_reconnect()

    async def error(exc: Exception) -> None:
        if not quiet:
            log.warning("broker_error", error=str(exc) or type(exc).__name__)

    options: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1 if attempts is None else attempts,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "ping_interval": 5,
        "max_outstanding_pings": 2,
        "allow_reconnect": True,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        "inbox_prefix": INBOX_PREFIX,
    }
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    client = await nats.connect(settings.nats_servers, **options)
    metrics.BROKER_UP.set(1)
    return client


@translating
async def round_trip(client: Client, timeout: float = 0.5) -> None:
    """Whether the broker answers now. A round trip, not the socket's state: a frozen or
    partitioned server keeps the connection open while answering nothing, for up to two
    ping intervals. A request, not flush(): a timed-out flush leaves its cancelled future
    queued in nats-py, and the late PONG then breaks the client's read loop (a reconnect)."""
    await client.jetstream(timeout=timeout).account_info()


@dataclass(frozen=True, slots=True)
class StreamPosition:
    first_seq: int
    last_seq: int
    created: str  # the stream's creation time: a new one means sequences started over


@translating
async def stream_position(js: JetStreamContext, stream: str) -> StreamPosition:
    info = await js.stream_info(stream)
    created = str(getattr(info, "created", None) or "")
    return StreamPosition(info.state.first_seq, info.state.last_seq, created)


@translating
async def publish_raw(
    js: JetStreamContext, subject: str, data: bytes, *, stream: str, headers: dict[str, str]
) -> int:
    """Publish bytes as they are; the stream sequence they got."""
    ack = await js.publish(subject, data, stream=stream, headers=headers)
    return int(ack.seq)


class Outgoing(NamedTuple):
    """A message to publish: its subject, its body, and its Nats-Msg-Id."""

    subject: str
    body: bytes
    msg_id: str


class Published(NamedTuple):
    """Where the stream put a message; `duplicate`: the broker had its Nats-Msg-Id already
    (within its duplicate window) and `seq` is that first copy's."""

    seq: int
    duplicate: bool


PUBLISH_TIMEOUT_S: Final = 5.0


@translating
async def publish_in_order(
    js: JetStreamContext, stream: str, messages: Sequence[Outgoing]
) -> list[Published]:
    """Publish, the stream keeping the given order, each acknowledged; many in flight."""
    publishes = [
        js.publish(
            m.subject,
            m.body,
            timeout=PUBLISH_TIMEOUT_S,
            stream=stream,
            headers={"Nats-Msg-Id": m.msg_id},
        )
        for m in messages
    ]
    try:
        # The first alone: nats-py sets up its reply subscription on a client's first
        # request, and may yield doing so. After that, publishes issued together are
        # written to the socket in the order issued: the stream keeps the batch's order.
        acks = [await publishes[0]] if publishes else []
    except BaseException:
        for unsent in publishes[1:]:
            unsent.close()
        raise
    acks += await asyncio.gather(*publishes[1:])
    return [Published(int(ack.seq), bool(ack.duplicate)) for ack in acks]
