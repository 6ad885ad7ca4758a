"""Steady offered load against a running `serve`: latency, projection lag, CPU, memory.

How latency is measured (honest, and a little pessimistic):
- the bench records the moment it hands each event to the producer (perf_counter);
- publish→committed: the arrival, at a LISTENing bench connection, of the ingest commit's
  NOTIFY on `motionledger_log` whose head covers the event's position;
- publish→visible: the same for the projector's NOTIFY on `motionledger_projected`
  (sent in the transaction that writes the read tables);
- projection lag: visible − committed, per event.
Positions are known without asking: one connection publishes in order, the stream keeps
that order, every event is valid and new, so the i-th event sent lands at head₀ + i + 1
(checked after the run: the head moved by exactly the number sent, no dead letters).
Both clocks are the bench's own; the NOTIFY's trip to the bench is included, so the
figures are upper bounds. The daemon's own histograms (broker timestamp → commit /
projection commit) are read from /metrics as a cross-check.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from motionledger.producer import Prepared, Producer

from .drain import HeadWatcher
from .infra import Daemon
from .stats import Histogram, percentiles

# the projector's NOTIFY channel (adapters/postgres/projection_sql.py)
PROJECTED_CHANNEL = "motionledger_projected"


@dataclass
class LoadResult:
    offered: float  # events/s asked for
    achieved: float  # events/s actually handed to the producer
    committed_rate: float  # events/s committed while the load was being offered
    events: int
    seconds: float
    commit_ms: dict[str, float]
    visible_ms: dict[str, float]
    lag_ms: dict[str, float]
    lag_first_third_p90_ms: float
    lag_last_third_p90_ms: float
    lag_growing: bool
    cpu_seconds: float
    cpu_cores: float
    cpu_s_per_1000: float
    peak_rss_mb: float
    daemon_commit_ms: dict[str, float] = field(default_factory=dict)
    daemon_visible_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _first_covering(sent: int, base: int, notes: list[tuple[int, int]]) -> array[int]:
    """For event i (position base+i+1), the ns of the first notification covering it."""
    out = array("q", [0]) * sent
    notes = sorted(notes)
    i = 0
    for ns, head in notes:
        while i < sent and base + i + 1 <= head:
            out[i] = ns
            i += 1
        if i >= sent:
            break
    if i < sent:
        raise RuntimeError(f"only {i} of {sent} events were ever covered by a notification")
    return out


async def offered_load(
    daemon: Daemon,
    producer: Producer,
    prepared: list[Prepared],
    *,
    rate: float,
    seconds: float,
    warmup_s: float = 1.0,
    settle_timeout: float = 120,
) -> LoadResult:
    conn = await asyncpg.connect(daemon.database_url)
    base = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
    dead_before = int(await conn.fetchval("SELECT count(*) FROM ledger.dead_letters"))
    commits = await HeadWatcher().start(daemon.database_url)
    visible = HeadWatcher(channel=PROJECTED_CHANNEL)
    await visible.start(daemon.database_url)
    before_commit = Histogram.scrape(await daemon.metrics_text(), "publish_to_commit")
    before_visible = Histogram.scrape(await daemon.metrics_text(), "publish_to_visible")
    total = min(len(prepared), int(rate * seconds))
    sent_ns = array("q", [0]) * total
    cpu_before = daemon.cpu_seconds()
    started = time.perf_counter()
    started_ns = time.perf_counter_ns()
    sent = 0
    try:
        while sent < total:
            due = min(total, int(rate * (time.perf_counter() - started)) + 1)
            while sent < due:
                sent_ns[sent] = time.perf_counter_ns()
                await producer.send_prepared(prepared[sent])
                sent += 1
            await asyncio.sleep(0.001)
        sending = time.perf_counter() - started
        await producer.flush()
        await commits.until(base + sent, settle_timeout)
        await visible.until(base + sent, settle_timeout)
        wall = time.perf_counter() - started
        cpu = daemon.cpu_seconds() - cpu_before
        head = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
        dead = int(await conn.fetchval("SELECT count(*) FROM ledger.dead_letters"))
        if head != base + sent or dead != dead_before or producer.stats.failed:
            raise RuntimeError(
                f"positions are not the send order: head {head} != {base} + {sent}, "
                f"dead letters {dead_before} -> {dead}, failed {producer.stats.failed}"
            )
        after_commit = Histogram.scrape(await daemon.metrics_text(), "publish_to_commit")
        after_visible = Histogram.scrape(await daemon.metrics_text(), "publish_to_visible")
    finally:
        await commits.close()
        await visible.close()
        await conn.close()
    sending_end_ns = started_ns + int(sending * 1e9)
    committed_while_sending = max(
        (head for ns, head in commits.commits if ns <= sending_end_ns), default=base
    )
    committed_at = _first_covering(sent, base, commits.commits)
    visible_at = _first_covering(sent, base, visible.commits)
    skip = min(sent - 1, int(rate * min(warmup_s, seconds / 5)))
    commit_ms = [(committed_at[i] - sent_ns[i]) / 1e6 for i in range(skip, sent)]
    visible_ms = [(visible_at[i] - sent_ns[i]) / 1e6 for i in range(skip, sent)]
    lag_ms = [v - c for v, c in zip(visible_ms, commit_ms, strict=True)]
    third = max(1, len(lag_ms) // 3)
    first_p90 = percentiles(lag_ms[:third])["p90"]
    last_p90 = percentiles(lag_ms[-third:])["p90"]
    return LoadResult(
        offered=rate,
        achieved=sent / sending,
        committed_rate=(committed_while_sending - base) / sending,
        events=sent,
        seconds=sending,
        commit_ms=percentiles(commit_ms),
        visible_ms=percentiles(visible_ms),
        lag_ms=percentiles(lag_ms),
        lag_first_third_p90_ms=first_p90,
        lag_last_third_p90_ms=last_p90,
        lag_growing=last_p90 > 2 * first_p90 + 10,
        cpu_seconds=cpu,
        cpu_cores=cpu / wall,
        cpu_s_per_1000=cpu / sent * 1000,
        peak_rss_mb=daemon.peak_rss_bytes() / 2**20,
        daemon_commit_ms=after_commit.minus(before_commit).quantiles_ms(),
        daemon_visible_ms=after_visible.minus(before_visible).quantiles_ms(),
    )
