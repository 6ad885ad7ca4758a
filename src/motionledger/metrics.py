"""Prometheus metrics: every name the daemon exports, in one place.

Dashboards and alert rules under deploy/ are checked against this module by the tests.
"""

from __future__ import annotations

import bisect
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from . import __version__

REGISTRY: Final = CollectorRegistry(auto_describe=True)
# process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds, ... (Linux
# /proc) and python_info: the same names every Prometheus client exports
PROCESS: Final = ProcessCollector(registry=REGISTRY)
PLATFORM: Final = PlatformCollector(registry=REGISTRY)


def _version_of(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - always installed with the server
        return "unknown"


BUILD_INFO: Final = Gauge(
    "motionledger_build_info",
    "Always 1; the labels say which motionledger, Python and nats-py this process runs.",
    ["version", "python", "nats_py"],
    registry=REGISTRY,
)
BUILD_INFO.labels(__version__, platform.python_version(), _version_of("nats-py")).set(1)

_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

EVENTS: Final = Counter(
    "motionledger_events_total",
    "Events judged, by lane, type and outcome (accepted, duplicate, rejected).",
    ["lane", "type", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS: Final = Counter(
    "motionledger_dead_letters_total",
    "Rejected messages kept as dead letters, by reason.",
    ["reason"],
    registry=REGISTRY,
)
STREAM_GAPS: Final = Counter(
    "motionledger_stream_missing_messages_total",
    "Stream sequences the broker no longer had when the ledger reached them (lost or expired).",
    registry=REGISTRY,
)
UNSTORABLE: Final = Counter(
    "motionledger_unstorable_messages_total",
    "Messages that could not even be stored as dead letters and were skipped (logged loudly).",
    registry=REGISTRY,
)
PUBLISH_TO_COMMIT: Final = Histogram(
    "motionledger_publish_to_commit_seconds",
    "From the broker's timestamp of a message to the commit of its batch, by lane.",
    ["lane"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCH_MESSAGES: Final = Histogram(
    "motionledger_ingest_batch_messages",
    "Messages per ingest transaction.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
    registry=REGISTRY,
)
BATCH_COMMIT: Final = Histogram(
    "motionledger_ingest_batch_commit_seconds",
    "Time to write and commit one ingest batch.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LOG_HEAD: Final = Gauge(
    "motionledger_log_head_position",
    "Position of the newest event in the log.",
    registry=REGISTRY,
)
STREAM_SEQUENCE: Final = Gauge(
    "motionledger_ingest_stream_sequence",
    "Stream sequence the ledger has committed up to.",
    registry=REGISTRY,
)
CONSUMER_PENDING: Final = Gauge(
    "motionledger_consumer_pending_messages",
    "Messages in the stream not yet committed to the log.",
    registry=REGISTRY,
)
INGEST_ACTIVE: Final = Gauge(
    "motionledger_ingest_active",
    "1 while this process holds the writer lease and ingests, 0 while it stands by.",
    registry=REGISTRY,
)
INGEST_RESTARTS: Final = Counter(
    "motionledger_ingest_restarts_total",
    "Times ingestion restarted from the committed checkpoint, by cause.",
    ["cause"],
    registry=REGISTRY,
)
BROKER_UP: Final = Gauge(
    "motionledger_broker_up", "1 while the broker connection is up.", registry=REGISTRY
)
DATABASE_UP: Final = Gauge(
    "motionledger_database_up", "1 while the database answers.", registry=REGISTRY
)
INGEST_STALLED: Final = Gauge(
    "motionledger_ingest_stalled_seconds",
    "Seconds since the last ingest commit while the stream holds unjudged messages; 0 otherwise.",
    registry=REGISTRY,
)
PROJECTION_POSITION: Final = Gauge(
    "motionledger_projection_position",
    "Last log position applied, by projection.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_LAG: Final = Gauge(
    "motionledger_projection_lag_positions",
    "Log positions a projection trails the head by.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_LAG_SECONDS: Final = Gauge(
    "motionledger_projection_lag_seconds",
    "Age of the oldest log event a projection has not applied yet.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_DELAY: Final = Histogram(
    "motionledger_projection_delay_seconds",
    "From an ingest commit (its NOTIFY, or the in-process signal) to the projector commit "
    "that makes its events visible in the read tables; one observation per ingest commit.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PUBLISH_TO_VISIBLE: Final = Histogram(
    "motionledger_publish_to_visible_seconds",
    "From the broker's timestamp of an event to its projection's commit, by lane.",
    ["lane"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_REQUESTS: Final = Histogram(
    "motionledger_http_request_duration_seconds",
    "HTTP request duration, by route template, method and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

# The live session stream (GET /production/session/live).
LIVE_STREAMS_OPEN: Final = Gauge(
    "motionledger_live_streams_open",
    "Live session streams (Server-Sent Events) open now.",
    registry=REGISTRY,
)
LIVE_EVENTS_SENT: Final = Counter(
    "motionledger_live_events_sent_total",
    "Events written to live session streams.",
    registry=REGISTRY,
)
LIVE_CLIENTS_DROPPED: Final = Counter(
    "motionledger_live_clients_dropped_total",
    "Live stream clients disconnected for falling too far behind (they resume by id).",
    registry=REGISTRY,
)


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe(v)` for each v, at the cost of one sort and a bisect per bucket.

    The hot paths observe one latency per event; prometheus_client's `observe` takes a lock
    and walks the buckets for each (~0.6 µs here), this ~0.1 µs. Same counts, same sum."""
    if not values:
        return
    ordered = sorted(values)
    below = 0
    for index, bound in enumerate(histogram._upper_bounds):
        upto = bisect.bisect_right(ordered, bound)
        if upto > below:
            histogram._buckets[index].inc(upto - below)
        below = upto
    histogram._sum.inc(sum(ordered))
