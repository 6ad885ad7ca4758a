"""The log's persistence: batch appends, the ingest checkpoint, and the judge's look-ups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

import asyncpg
import msgspec

from ... import logs
from ...domain.canonical import GENESIS_HASH, canonical_json
from ...domain.decoding import Decoded, decode_event
from ...domain.judge import FactKeys, Knowledge, Prior
from ...domain.reasons import Reason, Rejection
from ...errors import StorageRefused
from .errors import CONNECTION_LOST, translate, translating
from .log_rows import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, DeadLetterRow, EventRow, sql_columns

log = logs.get(__name__)

LOG_CHANNEL: Final = "motionledger_log"


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
    # the eventIds it logs that must not have been rejected before (replays left out)
    fresh_ids: list[str] = field(default_factory=list)


@translating
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


@translating
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


@translating
async def checkpoint(conn: asyncpg.Connection, stream: str) -> IngestState | None:
    """Where ingestion of `stream` stands, if it was ever ingested into this database."""
    row = await conn.fetchrow(
        "SELECT epoch, stream_seq FROM ledger.ingest_state WHERE stream = $1", stream
    )
    return None if row is None else IngestState(row[0], row[1])


# Small batches, the common case at live rates, go in as one statement: rows from arrays,
# the checkpoint's compare-and-set and the NOTIFY, one round trip, committed on its own.
# Big batches take COPY, cheaper per row once its extra round trips are spread over them.
SMALL_BATCH: Final = 64


def _insert_from_arrays(table: str, columns: Sequence[tuple[str, str]], first: int) -> str:
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(columns))
    names = ", ".join(name for name, _ in columns)
    return f"INSERT INTO ledger.{table} ({names}) SELECT * FROM unnest({arrays})"


def _small_commit(events: bool, dead_letters: bool) -> str:
    """The one-statement commit, with only the inserts the batch needs (each array is a
    parameter to encode, and most batches have no dead letters)."""
    ctes, n = [], 1
    if events:
        ctes.append(f"e AS ({_insert_from_arrays('events', sql_columns(EventRow), n)})")
        n += len(EVENT_COLUMNS)
    if dead_letters:
        dead = _insert_from_arrays("dead_letters", sql_columns(DeadLetterRow), n)
        ctes.append(f"d AS ({dead})")
        n += len(DEAD_LETTER_COLUMNS)
    # The checkpoint moves only past the guard: an eventId rejected before is not logged.
    ctes.append(f"g AS (SELECT ledger.assert_unjudged(${n}::text[]) AS unjudged)")
    n += 1
    ctes.append(
        f"c AS (SELECT ledger.advance_checkpoint(${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4})"
        " FROM g)"
    )
    return f"WITH {', '.join(ctes)} SELECT pg_notify('{LOG_CHANNEL}', ${n + 5}) FROM c"


_SMALL_COMMITS: Final = {
    (events, dead): _small_commit(events, dead)
    for events in (True, False)
    for dead in (True, False)
}


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


@translating
async def commit_batch(conn: asyncpg.Connection, batch: BatchWrite) -> None:
    """One transaction: rows, dead letters, checkpoint (compare-and-set), one NOTIFY.

    One round trip for a small batch; four for a big one: BEGIN, the COPYs, then
    checkpoint + NOTIFY + COMMIT as one simple query. Round trips matter: each costs system
    calls, and the ingest loop judges the next batch on the same thread meanwhile.
    Raises OutOfStep when another writer moved the checkpoint or the log, StorageRefused
    (or a subclass naming the rule) when PostgreSQL refused a row.
    """
    if len(batch.events) + len(batch.dead_letters) <= SMALL_BATCH:
        events, dead = batch.events, batch.dead_letters
        await conn.fetchval(
            _SMALL_COMMITS[(bool(events), bool(dead))],
            *_columns(events),
            *_columns(dead),
            batch.fresh_ids,
            batch.stream,
            batch.epoch,
            batch.from_seq,
            batch.to_seq,
            batch.duplicates,
            str(batch.head),
        )
        return
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
        if batch.fresh_ids:
            await conn.execute("SELECT ledger.assert_unjudged($1::text[])", batch.fresh_ids)
        # Only validated tokens and integers are inlined (the stream name is a Token setting).
        await conn.execute(
            f"SELECT ledger.advance_checkpoint('{batch.stream}', {batch.epoch:d}, "
            f"{batch.from_seq:d}, {batch.to_seq:d}, {batch.duplicates:d}); "
            f"NOTIFY {LOG_CHANNEL}, '{batch.head:d}'; COMMIT"
        )
    except BaseException:
        await _rollback(conn)
        raise


async def _rollback(conn: asyncpg.Connection) -> None:
    if not conn.is_closed() and conn.is_in_transaction():
        try:
            await conn.execute("ROLLBACK")
        except (asyncpg.PostgresError, *CONNECTION_LOST):
            conn.terminate()  # cannot tell its state: drop it (and with it the lease)


@translating
async def refused_events(
    conn: asyncpg.Connection, rows: Iterable[EventRow]
) -> dict[int, tuple[EventRow, StorageRefused]]:
    """The log rows PostgreSQL will not store, by stream sequence, with what it said."""
    return await _refused(conn, "events", EVENT_COLUMNS, rows)


@translating
async def refused_dead_letters(
    conn: asyncpg.Connection, rows: Iterable[DeadLetterRow]
) -> dict[int, tuple[DeadLetterRow, StorageRefused]]:
    """The dead letters PostgreSQL will not store, by stream sequence, with what it said."""
    return await _refused(conn, "dead_letters", DEAD_LETTER_COLUMNS, rows)


Row = TypeVar("Row", EventRow, DeadLetterRow)


async def _refused(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[Row]
) -> dict[int, tuple[Row, StorageRefused]]:
    """Each row tried alone in a savepoint, nothing kept. A row that another writer's rows
    collide with raises OutOfStep: nothing this writer judged can be trusted then."""
    refused: dict[int, tuple[Row, StorageRefused]] = {}
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
                typed = translate(error)
                if not isinstance(typed, StorageRefused):
                    raise
                refused[row.stream_seq] = (row, typed)
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


@translating
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


@translating
async def still_session(conn: asyncpg.Connection | asyncpg.Pool, still_id: str) -> str | None:
    """The session a still belongs to, from its `still.created` in the log."""
    value = await conn.fetchval(
        "SELECT session_id FROM ledger.events WHERE type = 'still.created' AND entity_id = $1",
        still_id,
    )
    return None if value is None else str(value)


_PRIORS: Final = """
SELECT event_id, body, NULL::bytea, NULL::bigint, NULL, NULL, NULL
  FROM ledger.events WHERE event_id = ANY($1::text[])
UNION ALL
SELECT event_id, NULL, raw, id, reason, detail, field FROM ledger.binding_rejections($1::text[])
"""


@translating
async def priors(
    conn: asyncpg.Connection | asyncpg.Pool, event_ids: Iterable[str], max_event_bytes: int
) -> dict[str, Prior]:
    """How each of these eventIds was judged before, where it was: its logged body, else
    its binding rejection (the raw body it came with, and the verdict)."""
    found: dict[str, Prior] = {}
    for event_id, body, raw, dead_letter, reason, detail, field_ in await conn.fetch(
        _PRIORS, list(event_ids)
    ):
        if body is not None:
            # jsonb gives back the canonical body the chain was hashed over, keys aside
            found[event_id] = Prior(canonical_json(msgspec.json.decode(body)))
        elif event_id not in found:
            raw = bytes(raw)
            try:
                decoded = decode_event(raw, max_event_bytes)
            except Exception:  # bytes the judge quarantined: not an event, whatever it says
                decoded = None
            # an event's canonical body; bytes that are not one, as they came (a copy is the
            # same only when its bytes are)
            body = decoded.body if isinstance(decoded, Decoded) else raw
            rejection = Rejection(Reason(reason), detail, field_)
            found[event_id] = Prior(body, rejection, dead_letter)
    return found


@translating
async def dead_letters_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Iterable[int]
) -> dict[int, tuple[str | None, bytes]]:
    """Dead letters by id: the eventId read from each, and its raw body."""
    rows = await conn.fetch(
        "SELECT id, event_id, raw FROM ledger.dead_letters WHERE id = ANY($1::bigint[])",
        list(ids),
    )
    return {row[0]: (row[1], bytes(row[2])) for row in rows}


@translating
async def log_head(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The highest position in the log (0 when empty): one primary-key probe."""
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
