"""The log's persistence: batch appends, the ingest checkpoint, and the judge's look-ups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from ... import logs
from ...domain.canonical import GENESIS_HASH
from ...domain.events import TAG_OF, Event
from ...domain.judge import FactKeys, Knowledge
from .database import DB_DOWN

log = logs.get(__name__)

# pg_advisory_lock key of the writer lease: one ingesting process per database
WRITER_LEASE: Final = 0x6D6C_696E_6765_7374
LOG_CHANNEL: Final = "motionledger_log"

EVENT_COLUMNS: Final = (
    "position",
    "event_id",
    "lane",
    "type",
    "session_id",
    "entity_id",
    "timestamp_ms",
    "recorded_at",
    "body",
    "stream_epoch",
    "stream_seq",
    "published_at",
    "hash",
)
DEAD_LETTER_COLUMNS: Final = (
    "subject",
    "headers",
    "raw",
    "reason",
    "detail",
    "field",
    "event_id",
    "session_id",
    "type",
    "received_at",
    "recorded_at",
    "stream_epoch",
    "stream_seq",
)
# Rows are plain tuples in the column order above: COPY takes them as they are.
EventRow = tuple[Any, ...]
DeadLetterRow = tuple[Any, ...]


def event_row(
    position: int,
    event: Event,
    body: bytes,
    recorded_at: datetime,
    epoch: int,
    seq: int,
    published_at: datetime,
    chain: bytes,
) -> EventRow:
    """A log row in EVENT_COLUMNS order, from the event and where it sits."""
    return (
        position,
        event.event_id,
        event.lane,
        TAG_OF[type(event)],
        event.session_id,
        event.entity_id,
        event.timestamp,
        recorded_at,
        body,
        epoch,
        seq,
        published_at,
        chain,
    )


class LeaseLost(Exception):
    """Another writer moved the checkpoint: this process must stop writing."""


@dataclass(frozen=True, slots=True)
class Head:
    position: int
    hash: bytes
    recorded_at: datetime | None = None  # of the row at `position`


@dataclass(frozen=True, slots=True)
class IngestState:
    epoch: int
    stream_seq: int


@dataclass(slots=True)
class BatchWrite:
    """Everything one ingest transaction writes."""

    stream: str
    epoch: int
    from_seq: int  # the checkpoint this batch builds on
    to_seq: int  # the checkpoint after it
    events: list[EventRow]
    dead_letters: list[DeadLetterRow]
    duplicates: int
    recorded_at: datetime
    head: int


async def head(conn: asyncpg.Connection) -> Head:
    row = await conn.fetchrow(
        "SELECT position, hash, recorded_at FROM ledger.events ORDER BY position DESC LIMIT 1"
    )
    if row is None:
        return Head(0, GENESIS_HASH)
    return Head(row["position"], bytes(row["hash"]), row["recorded_at"])


_NEXT_EPOCH: Final = """
SELECT greatest(
    (SELECT coalesce(max(stream_epoch), 0) FROM ledger.events),
    (SELECT coalesce(max(stream_epoch), 0) FROM ledger.dead_letters),
    (SELECT coalesce(max(epoch), 0) FROM ledger.ingest_state)
) + 1
"""


async def ingest_state(
    conn: asyncpg.Connection, stream: str, created: str, last_seq: int, now: datetime
) -> IngestState:
    """Where ingestion of `stream` stands: its epoch and the committed sequence.

    Stream sequences restart when the stream is re-created, and go back when the broker
    lost the tail of its stream (a crash before its disk sync). Either way the sequences
    ahead would collide with ones already logged, so a new epoch starts — at 0 for a new
    stream, at the broker's last sequence for a lost tail (what was lost from the broker is
    safe in the log; what is published next gets those sequence numbers again). Epochs are
    unique across every stream the database has ingested.
    """
    if not created:  # it tells a re-created stream from the same one: never guess
        raise RuntimeError(f"the broker reported no creation time for stream {stream}")
    row = await conn.fetchrow(
        "SELECT epoch, stream_created, stream_seq FROM ledger.ingest_state WHERE stream = $1",
        stream,
    )
    if row is not None and row["stream_created"] == created:
        if last_seq >= row["stream_seq"]:
            return IngestState(row["epoch"], row["stream_seq"])
        start = last_seq
        log.error(
            "stream_lost_its_tail",
            stream=stream,
            committed_seq=row["stream_seq"],
            stream_last_seq=last_seq,
        )
    else:
        start = 0
        if row is not None:
            log.warning("stream_recreated", stream=stream, was=row["stream_created"], now=created)
    epoch = await conn.fetchval(_NEXT_EPOCH)
    await conn.execute(
        "INSERT INTO ledger.ingest_state (stream, epoch, stream_created, stream_seq, updated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream) DO UPDATE SET epoch = $2, "
        "stream_created = $3, stream_seq = $4, updated_at = $5",
        stream,
        epoch,
        created,
        start,
        now,
    )
    return IngestState(epoch, start)


# Small batches, the common case at live rates, go in as one statement: rows from arrays,
# the checkpoint's compare-and-set and the NOTIFY, one round trip, committed on its own.
# Big batches take COPY, cheaper per row once its extra round trips are spread over them.
SMALL_BATCH: Final = 64
_EVENT_TYPES: Final = (
    "bigint", "text", "text", "text", "text", "text", "bigint", "timestamptz", "jsonb",
    "integer", "bigint", "timestamptz", "bytea",
)  # fmt: skip
_DEAD_LETTER_TYPES: Final = (
    "text", "jsonb", "bytea", "text", "text", "text", "text", "text", "text", "timestamptz",
    "timestamptz", "integer", "bigint",
)  # fmt: skip


def _insert_from_arrays(
    table: str, columns: Sequence[str], types: Sequence[str], first: int
) -> str:
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, kind in enumerate(types))
    return f"INSERT INTO ledger.{table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"


def _small_commit(events: bool, dead_letters: bool) -> str:
    """The one-statement commit, with only the inserts the batch needs (each array is a
    parameter to encode, and most batches have no dead letters)."""
    ctes, n = [], 1
    if events:
        ctes.append(f"e AS ({_insert_from_arrays('events', EVENT_COLUMNS, _EVENT_TYPES, n)})")
        n += len(_EVENT_TYPES)
    if dead_letters:
        dead = _insert_from_arrays("dead_letters", DEAD_LETTER_COLUMNS, _DEAD_LETTER_TYPES, n)
        ctes.append(f"d AS ({dead})")
        n += len(_DEAD_LETTER_TYPES)
    ctes.append(
        f"c AS (SELECT ledger.advance_checkpoint(${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4}))"
    )
    return f"WITH {', '.join(ctes)} SELECT pg_notify('{LOG_CHANNEL}', ${n + 5}) FROM c"


_SMALL_COMMITS: Final = {
    (events, dead): _small_commit(events, dead)
    for events in (True, False)
    for dead in (True, False)
}


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def commit_batch(conn: asyncpg.Connection, batch: BatchWrite) -> None:
    """One transaction: rows, dead letters, checkpoint (compare-and-set), one NOTIFY.

    One round trip for a small batch; four for a big one: BEGIN, the COPYs, then
    checkpoint + NOTIFY + COMMIT as one simple query. Round trips matter: each costs system
    calls, and the ingest loop judges the next batch on the same thread meanwhile.
    """
    try:
        if len(batch.events) + len(batch.dead_letters) <= SMALL_BATCH:
            events, dead = batch.events, batch.dead_letters
            await conn.fetchval(
                _SMALL_COMMITS[(bool(events), bool(dead))],
                *_columns(events),
                *_columns(dead),
                batch.stream,
                batch.epoch,
                batch.from_seq,
                batch.to_seq,
                batch.duplicates,
                str(batch.head),
            )
            return
    except asyncpg.PostgresError as error:
        if getattr(error, "sqlstate", None) == "MLCKP":
            raise LeaseLost(str(error)) from error
        raise
    await conn.execute("BEGIN")
    try:
        if batch.events:
            await conn.copy_records_to_table(
                "events", schema_name="ledger", records=batch.events, columns=EVENT_COLUMNS
            )
        if batch.dead_letters:
            await conn.copy_records_to_table(
                "dead_letters",
                schema_name="ledger",
                records=batch.dead_letters,
                columns=DEAD_LETTER_COLUMNS,
            )
        # Only validated tokens and integers are inlined (the stream name is a Token setting).
        await conn.execute(
            f"SELECT ledger.advance_checkpoint('{batch.stream}', {batch.epoch:d}, "
            f"{batch.from_seq:d}, {batch.to_seq:d}, {batch.duplicates:d}); "
            f"NOTIFY {LOG_CHANNEL}, '{batch.head:d}'; COMMIT"
        )
    except asyncpg.PostgresError as error:
        await _rollback(conn)
        if getattr(error, "sqlstate", None) == "MLCKP":
            raise LeaseLost(str(error)) from error
        raise
    except BaseException:
        await _rollback(conn)
        raise


async def _rollback(conn: asyncpg.Connection) -> None:
    if not conn.is_closed() and conn.is_in_transaction():
        try:
            await conn.execute("ROLLBACK")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            conn.terminate()  # cannot tell its state: drop it (and with it the lease)


async def refused_rows(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> dict[int, tuple[tuple[Any, ...], asyncpg.PostgresError]]:
    """Rows PostgreSQL will not store, by stream sequence, with the error; each row is
    tried alone, and nothing is kept."""
    refused: dict[int, tuple[tuple[Any, ...], asyncpg.PostgresError]] = {}
    seq_index = list(columns).index("stream_seq")
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    insert = f"INSERT INTO ledger.{table} ({', '.join(columns)}) VALUES ({placeholders})"
    tx = conn.transaction()
    await tx.start()
    try:
        for row in rows:
            savepoint = conn.transaction()
            await savepoint.start()
            try:
                await conn.execute(insert, *row)
            except asyncpg.PostgresError as error:
                if isinstance(error, DB_DOWN):
                    raise
                refused[row[seq_index]] = (row, error)
            finally:
                await savepoint.rollback()
    finally:
        await tx.rollback()
    return refused


_FACTS_SQL: Final = """
SELECT 's' AS kind, session_id AS a, NULL AS b FROM ledger.events
 WHERE type = 'session.started' AND session_id = ANY($1::text[])
UNION ALL
SELECT DISTINCT 'c', session_id, entity_id FROM ledger.events
 WHERE type = 'camera.upserted' AND session_id = ANY($2::text[]) AND entity_id = ANY($3::text[])
UNION ALL
SELECT 't', entity_id, session_id FROM ledger.events
 WHERE type = 'still.created' AND entity_id = ANY($4::text[])
UNION ALL
SELECT 'a', entity_id, NULL FROM ledger.events
 WHERE type = 'asset.created' AND entity_id = ANY($5::text[])
"""


async def lookup_facts(conn: asyncpg.Connection | asyncpg.Pool, keys: FactKeys) -> Knowledge:
    """Which of the asked-for entities the log holds: one round trip."""
    cameras = keys.cameras
    rows = await conn.fetch(
        _FACTS_SQL,
        list(keys.sessions),
        [s for s, _ in cameras],
        [c for _, c in cameras],
        list(keys.stills),
        list(keys.assets),
    )
    known = Knowledge()
    for kind, a, b in rows:
        if kind == "s":
            known.sessions.add(a)
        elif kind == "c":
            if (a, b) in cameras:
                known.cameras.add((a, b))
        elif kind == "t":
            known.stills[a] = b
        else:
            known.assets.add(a)
    return known


async def existing_event_ids(
    conn: asyncpg.Connection | asyncpg.Pool, event_ids: Iterable[str]
) -> set[str]:
    rows = await conn.fetch(
        "SELECT event_id FROM ledger.events WHERE event_id = ANY($1::text[])", list(event_ids)
    )
    return {row[0] for row in rows}
