"""What a user could pick instead of the ledger, measured on the same backlog.

(a) `plain`: a plain nats-py pull consumer — fetch(1000), one ack per batch (AckAll),
    nothing else. The client's own limit.
(b) `naive`: a consumer doing one autocommit INSERT per event (and one ack per message).
(c) `copy_rate`: a plain PostgreSQL COPY of the very rows the ledger wrote.

(a) and (b) run as child processes (`python -m bench.baselines plain|naive ...`), like
the ledger itself does, and time themselves from their first fetch to their last ack;
interpreter start-up and connecting are outside the clock. They print one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from typing import Any

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from motionledger.adapters.postgres.database import connect
from motionledger.adapters.postgres.log_rows import EVENT_COLUMNS

NAIVE_TABLE = """
CREATE TABLE IF NOT EXISTS naive_events (
    stream_seq  bigint PRIMARY KEY,
    event_id    text   NOT NULL UNIQUE,
    subject     text   NOT NULL,
    type        text   NOT NULL,
    session_id  text   NOT NULL,
    body        jsonb  NOT NULL
)
"""


async def _consumer(nats_url: str, stream: str, durable: str, ack: AckPolicy) -> Any:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer(stream, durable)
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=ack,
            max_ack_pending=100_000,
            ack_wait=120,
        ),
    )
    return client, await js.pull_subscribe_bind(durable, stream)


async def plain(nats_url: str, stream: str, count: int) -> dict[str, Any]:
    client, sub = await _consumer(nats_url, stream, "bench-plain", AckPolicy.ALL)
    got = 0
    started = time.perf_counter()
    while got < count:
        msgs = await sub.fetch(1000, timeout=10)
        got += len(msgs)
        await msgs[-1].ack()
    await client.flush()
    elapsed = time.perf_counter() - started
    await client.close()
    return {"events": got, "seconds": elapsed}


async def naive(nats_url: str, stream: str, count: int, database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    await conn.execute(NAIVE_TABLE)
    client, sub = await _consumer(nats_url, stream, "bench-naive", AckPolicy.EXPLICIT)
    insert = (
        "INSERT INTO naive_events (stream_seq, event_id, subject, type, session_id, body) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
    )
    got = 0
    started = time.perf_counter()
    while got < count:
        for msg in await sub.fetch(min(1000, count - got), timeout=10):
            event = json.loads(msg.data)
            await conn.execute(
                insert,
                msg.metadata.sequence.stream,
                event["eventId"],
                msg.subject,
                event["type"],
                event["sessionId"],
                msg.data.decode(),
            )
            await msg.ack()
            got += 1
    await client.flush()
    elapsed = time.perf_counter() - started
    await client.close()
    await conn.close()
    return {"events": got, "seconds": elapsed}


async def run_child(kind: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run a baseline in its own interpreter; its JSON line back."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.baselines",
        kind,
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    if process.returncode != 0:
        raise RuntimeError(f"baseline {kind} failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def copy_rate(rows: list[Any], database_url: str, *, chunk: int = 10_000) -> dict[str, Any]:
    """COPY the rows into an empty, migrated log table: batches of 10 000, one commit each."""
    conn = await connect(database_url)
    try:
        records = [tuple(row) for row in rows]
        started = time.perf_counter()
        for start in range(0, len(records), chunk):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "events",
                    schema_name="ledger",
                    records=records[start : start + chunk],
                    columns=EVENT_COLUMNS,
                )
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return {"events": len(records), "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["plain", "naive"])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.kind == "plain":
        result = asyncio.run(plain(args.nats, args.stream, args.count))
    else:
        result = asyncio.run(naive(args.nats, args.stream, args.count, args.database))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
