"""Connecting to NATS and keeping the stream's configuration what the ledger needs."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
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


# Settings the ledger depends on, compared when the stream already exists.
_CHECKED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "num_replicas",
    "duplicate_window",
    "deny_delete",
    "deny_purge",
)


def _differences(want: StreamConfig, have: StreamConfig) -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    for name in _CHECKED:
        wanted, actual = getattr(want, name), getattr(have, name)
        if isinstance(wanted, float) and isinstance(actual, int | float):
            if abs(wanted - actual) < 1e-3:
                continue
        elif wanted == actual or (name == "subjects" and set(wanted or []) == set(actual or [])):
            continue
        out[name] = (wanted, actual)
    return out


@translating
async def ensure_stream(js: JetStreamContext, settings: Settings) -> StreamInfo:
    """Create the stream, or bring an existing one in line; report what cannot be changed."""
    want = stream_config(settings)
    try:
        info = await js.stream_info(settings.stream)
    except NotFoundError:
        info = await js.add_stream(want)
        log.info("stream_created", stream=settings.stream, subjects=want.subjects)
        return info
    diff = _differences(want, info.config)
    if not diff:
        return info
    log.warning(
        "stream_settings_differ",
        stream=settings.stream,
        differences={k: {"want": str(w), "have": str(h)} for k, (w, h) in diff.items()},
    )
    try:
        info = await js.update_stream(want)
        log.info("stream_updated", stream=settings.stream, changed=sorted(diff))
    except Exception as error:  # the server refuses some changes (storage, replicas on 2.9)
        log.warning("stream_update_refused", stream=settings.stream, error=str(error))
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
) -> Client:
    """A connection that never gives up reconnecting; health is reported, not fatal."""

    async def disconnected() -> None:
        metrics.BROKER_UP.set(0)
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
        log.warning("broker_error", error=str(exc) or type(exc).__name__)

    options: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
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
