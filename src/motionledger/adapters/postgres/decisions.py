"""How the ledger decided events a writer waits for, and the notifications that say when
to ask: the ingest's commits (`motionledger_log`) and the projector's (`motionledger_projected`),
from any process on the same database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import asyncpg

from .errors import translating
from .ledger import LOG_CHANNEL
from .projection_sql import PROJECTED_CHANNEL

Listener = Callable[[Any, int, str, str], None]
CHANNELS: Final = (LOG_CHANNEL, PROJECTED_CHANNEL)


class Awaited(NamedTuple):
    event_id: str
    stream_seq: int  # where it was published: its dead letter, if any, has it
    projection: str  # the read table that must show it


class Decision(NamedTuple):
    asked: int  # its index in the list asked about
    position: int | None  # its eventId logged at
    visible: bool | None  # and projected into its read table
    reason: str | None  # or this copy rejected (its own dead letter)
    detail: str | None
    # the log row is another copy's (this one came later): it was a duplicate of it once
    # judged (`judged`), or is still to be judged
    other_copy: bool
    judged: bool  # the ingest has committed past this copy's stream sequence


_DECIDED: Final = """
SELECT w.i - 1, e.position, e.position <= s.position AS visible, d.reason, d.detail,
       e.position IS NOT NULL AND w.seq >= 0 AND e.stream_seq IS DISTINCT FROM w.seq,
       coalesce(c.stream_seq >= w.seq, false)
  FROM unnest($1::text[], $2::bigint[], $3::text[])
       WITH ORDINALITY AS w(event_id, seq, projection, i)
  LEFT JOIN ledger.events e ON e.event_id = w.event_id
  LEFT JOIN production.projection_state s ON s.projection = w.projection
  LEFT JOIN ledger.ingest_state c ON c.stream = $4
  LEFT JOIN LATERAL (
        SELECT d.reason, d.detail FROM ledger.dead_letters d
         WHERE d.event_id = w.event_id AND d.stream_seq = w.seq
         ORDER BY d.id DESC LIMIT 1
  ) d ON true
"""


@translating
async def decisions(
    conn: asyncpg.Connection, stream: str, awaited: Sequence[Awaited]
) -> list[Decision]:
    """What became of each awaited event so far: one query for all of them."""
    rows = await conn.fetch(
        _DECIDED,
        [a.event_id for a in awaited],
        [a.stream_seq for a in awaited],
        [a.projection for a in awaited],
        stream,
    )
    return [Decision(*row) for row in rows]


@translating
async def listen(conn: asyncpg.Connection, listener: Listener) -> None:
    for channel in CHANNELS:
        await conn.add_listener(channel, listener)


@translating
async def unlisten(conn: asyncpg.Connection, listener: Listener) -> None:
    for channel in CHANNELS:
        await conn.remove_listener(channel, listener)


@translating
async def projected_position(conn: asyncpg.Connection) -> int:
    """The log position every read table has reached (the lowest checkpoint)."""
    value = await conn.fetchval("SELECT min(position) FROM production.projection_state")
    return 0 if value is None else int(value)


@translating
async def committed_seq(conn: asyncpg.Connection, stream: str) -> int:
    """The stream sequence the ledger has judged and committed up to."""
    value = await conn.fetchval(
        "SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1", stream
    )
    return 0 if value is None else int(value)
