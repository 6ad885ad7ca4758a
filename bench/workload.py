"""The events the bench uses: a mixed backlog published to a stream, and big logs written
straight into `ledger.events` (COPY, with a valid hash chain) to save the time of
ingesting them."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from motionledger.adapters.postgres.database import connect
from motionledger.adapters.postgres.log_rows import EVENT_COLUMNS, event_row
from motionledger.domain.canonical import GENESIS_HASH, canonical_json, chain_hash
from motionledger.domain.events import Event
from motionledger.producer import Prepared, Producer
from motionledger.services.shoot import ShootPlan, shoot

BASE_MS = 1_760_000_000_000


def mixed_plan(count: int, *, seed: int, sessions: int = 8, rate: float = 30.0) -> ShootPlan:
    """A multi-session shoot that, run to its end, holds about `count` events of every kind."""
    sample = ShootPlan(start_ms=BASE_MS, seed=seed, sessions=sessions, duration_s=30, rate=rate)
    per_second = sum(1 for _ in shoot(sample)) / 30
    return ShootPlan(
        start_ms=BASE_MS,
        seed=seed,
        sessions=sessions,
        duration_s=max(5.0, count / per_second),
        rate=rate,
    )


def mixed_events(count: int, *, seed: int) -> list[Event]:
    return [event for _, event in shoot(mixed_plan(count, seed=seed))]


def one_session(count: int, *, seed: int, rate: float = 400.0) -> Iterator[Event]:
    """A single, very long session (high decision rate): the 'session with 1M events'."""
    plan = ShootPlan(start_ms=BASE_MS, seed=seed, sessions=1, duration_s=10**7, rate=rate)
    return (event for _, event in itertools.islice(shoot(plan), count))


def prepare_all(events: list[Event], root: str) -> list[Prepared]:
    """Encoded and checked before any clock starts (fence off: no faults in a bench)."""
    producer = Producer(None, subject_root=root, fence=False)  # type: ignore[arg-type]
    return [producer.prepare(event) for event in events]


async def publish_all(producer: Producer, prepared: list[Prepared]) -> float:
    """Publish everything pipelined; returns events/s."""
    started = time.perf_counter()
    for item in prepared:
        await producer.send_prepared(item)
    await producer.flush()
    elapsed = time.perf_counter() - started
    if producer.stats.failed:
        raise RuntimeError(f"{producer.stats.failed} backlog publishes failed")
    return len(prepared) / elapsed


def _rows(
    events: list[Event], position: int, previous: bytes, base: datetime
) -> tuple[list[tuple[Any, ...]], bytes]:
    rows: list[tuple[Any, ...]] = []
    for event in events:
        body = canonical_json(event)
        position += 1
        previous = chain_hash(previous, position, event.event_id, body)
        at = base + timedelta(microseconds=position * 50)
        rows.append(event_row(position, event, body, at, 1, position, at, previous))
    return rows, previous


async def bulk_load(url: str, events: Iterator[Event], *, chunk: int = 20_000) -> int:
    """Write the events as log rows 1..n (stream epoch 1) into an empty log; returns n.

    Row building runs in a thread while the previous chunk's COPY runs on the server."""
    conn = await connect(url)
    base = datetime.now(UTC) - timedelta(days=1)
    position, previous = 0, GENESIS_HASH
    copying: asyncio.Task[Any] | None = None
    try:
        while True:
            batch = list(itertools.islice(events, chunk))
            if not batch:
                break
            rows, previous = await asyncio.to_thread(_rows, batch, position, previous, base)
            position += len(rows)
            if copying is not None:
                await copying
            copying = asyncio.ensure_future(
                conn.copy_records_to_table(
                    "events", schema_name="ledger", records=rows, columns=EVENT_COLUMNS
                )
            )
        if copying is not None:
            await copying
        await conn.execute("ANALYZE ledger.events")
    finally:
        await conn.close()
    return position


async def log_rows(url: str) -> list[asyncpg.Record]:
    conn = await connect(url)
    try:
        return list(
            await conn.fetch(
                f"SELECT {', '.join(EVENT_COLUMNS)} FROM ledger.events ORDER BY position"
            )
        )
    finally:
        await conn.close()
