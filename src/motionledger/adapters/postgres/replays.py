"""The record of dead letters replayed (ledger.replays), and what became of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, NamedTuple

import asyncpg

from .errors import translating


class Candidate(NamedTuple):
    """A dead letter chosen for a replay, and its earlier replay if there was one."""

    id: int
    subject: str
    raw: bytes
    stream_epoch: int
    stream_seq: int
    replayed_seq: int | None
    replayed_at: datetime | None


_CHOSEN: Final = """
SELECT d.id, d.subject, d.raw, d.stream_epoch, d.stream_seq, r.stream_seq, r.requested_at
  FROM ledger.dead_letters d
  LEFT JOIN ledger.replays r ON r.dead_letter_id = d.id
 WHERE d.id = ANY($1::bigint[])
    OR ($2::text IS NOT NULL AND d.reason = $2 AND r.dead_letter_id IS NULL
        -- by reason: what producers sent, not the results of earlier replays (so the same
        -- --reason run twice is a no-op), nor copies that repeat an earlier dead letter's
        -- verdict (replaying that one judges the eventId); those can be chosen by --id
        AND NOT d.headers ? 'Motionledger-Replay-Of' AND d.repeat_of IS NULL)
 ORDER BY d.id
"""


@translating
async def chosen(
    conn: asyncpg.Connection, ids: Sequence[int], reason: str | None
) -> list[Candidate]:
    """The dead letters asked for by id, and those with `reason` not replayed yet."""
    rows = await conn.fetch(_CHOSEN, list(ids), reason)
    return [Candidate(row[0], row[1], bytes(row[2]), *row[3:]) for row in rows]


@translating
async def record(
    conn: asyncpg.Connection,
    dead_letter_id: int,
    msg_id: str,
    subject: str,
    stream: str,
    epoch: int,
    seq: int,
) -> None:
    await conn.execute(
        "INSERT INTO ledger.replays (dead_letter_id, msg_id, subject, stream, "
        "stream_epoch, stream_seq) VALUES ($1, $2, $3, $4, $5, $6)",
        dead_letter_id,
        msg_id,
        subject,
        stream,
        epoch,
        seq,
    )


class Outcomes(NamedTuple):
    logged: dict[int, int]  # stream sequence -> log position
    rejected: dict[int, tuple[int, str]]  # stream sequence -> (new dead letter id, reason)


@translating
async def outcomes(conn: asyncpg.Connection, epoch: int, seqs: Sequence[int]) -> Outcomes:
    """What the judge made of the messages at these stream sequences."""
    logged = await conn.fetch(
        "SELECT stream_seq, position FROM ledger.events "
        "WHERE stream_epoch = $1 AND stream_seq = ANY($2::bigint[])",
        epoch,
        list(seqs),
    )
    rejected = await conn.fetch(
        "SELECT stream_seq, id, reason FROM ledger.dead_letters "
        "WHERE stream_epoch = $1 AND stream_seq = ANY($2::bigint[])",
        epoch,
        list(seqs),
    )
    return Outcomes(
        {row[0]: row[1] for row in logged}, {row[0]: (row[1], row[2]) for row in rejected}
    )
