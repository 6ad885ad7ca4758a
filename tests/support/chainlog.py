"""A valid, hash-chained log written straight into `ledger.events` (COPY), for verify tests
and measurements: the rows the ingest daemon would write, without the broker in between."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from motionledger.adapters.postgres.ledger import head
from motionledger.adapters.postgres.log_rows import EVENT_COLUMNS
from motionledger.domain.canonical import canonical_json, chain_hash
from motionledger.domain.events import DECODER


def _body(session: str, n: int) -> dict[str, Any]:
    if n == 0:
        return {"type": "session.started", "sessionType": "music_demo", "title": "seeded"}
    return {
        "type": "director.event",
        "timestampMs": 1_700_000_000_000 + n,
        "eventType": "cut",
        "cameraId": f"cam{n % 4}",
        "score": n / 7,
        "metadata": {"frame": n, "pose": {"x": 0.25, "y": -1.5e-7, "label": "héro"}},
    }


async def seed_log(conn: asyncpg.Connection, count: int, *, chunk: int = 20_000) -> int:
    """Append `count` valid events after the current head; returns the new head position."""
    top = await head(conn)
    position, previous = top.position, top.hash
    session = f"seed{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    for n in range(count):
        raw = {**_body(session, n), "eventId": uuid.uuid4().hex, "sessionId": session}
        event = DECODER.decode(msgspec.json.encode(raw))
        body = canonical_json(event)
        position += 1
        previous = chain_hash(previous, position, event.event_id, body)
        rows.append(
            (
                position,
                event.event_id,
                event.lane,
                event.type_name,
                session,
                event.entity_id,
                event.timestamp,
                now,
                body,
                1,
                position,
                now,
                previous,
            )
        )
        if len(rows) >= chunk:
            await conn.copy_records_to_table(
                "events", schema_name="ledger", records=rows, columns=EVENT_COLUMNS
            )
            rows.clear()
    if rows:
        await conn.copy_records_to_table(
            "events", schema_name="ledger", records=rows, columns=EVENT_COLUMNS
        )
    return position
