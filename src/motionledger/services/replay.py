"""`motionledger dead-letters replay`: re-judge chosen dead letters once their cause is fixed.

A replay puts the dead letter's raw body back on its original subject, so it goes through
the same stream, in stream order, and the same judge as any producer's message; nothing
is written to the log from here. Exactly once:

- each dead letter is replayed at most once: `ledger.replays` records it (an append-only
  table, primary key = the dead letter's id), under an advisory lock so two operators
  replaying at once take turns;
- the message carries a deterministic `Nats-Msg-Id` (`replay-<epoch>-<seq>` of the dead
  letter), so a replay interrupted between publishing and recording and then run again is
  dropped by the broker's duplicate window, and the record gets the first copy's sequence;
- past that window, the eventId dedupe of the judge still keeps an accepted event from
  being logged twice.

A header `Motionledger-Replay-Of: <id>` names the dead letter; should the replay be
rejected again, its new dead letter keeps that header, so the history stays traceable.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import asyncpg
import msgspec
from nats.js import JetStreamContext

from ..adapters.nats import broker
from ..adapters.postgres.database import connect
from ..settings import Settings

REPLAY_HEADER: Final = "Motionledger-Replay-Of"
# pg_advisory_lock key: one replay at a time per database
_REPLAY_LOCK: Final = 0x6D6C_7265_706C_6179

Verdict = Literal["logged", "rejected", "duplicate", "pending", "already_replayed", "not_found"]


class Replayed(msgspec.Struct, rename="camel"):
    """What became of one dead letter asked for."""

    dead_letter_id: int
    verdict: Verdict
    stream_seq: int | None = None
    position: int | None = None  # logged: where
    reason: str | None = None  # rejected: why (again)
    new_dead_letter_id: int | None = None
    replayed_at: str | None = None  # already_replayed: when it was


_SELECT = """
SELECT d.id, d.subject, d.raw, d.stream_epoch, d.stream_seq, r.stream_epoch AS r_epoch,
       r.stream_seq AS r_seq, r.requested_at
  FROM ledger.dead_letters d
  LEFT JOIN ledger.replays r ON r.dead_letter_id = d.id
 WHERE d.id = ANY($1::bigint[])
    OR ($2::text IS NOT NULL AND d.reason = $2 AND r.dead_letter_id IS NULL
        -- by reason: what producers sent, not the results of earlier replays (so the same
        -- --reason run twice is a no-op); those can still be chosen by --id
        AND NOT d.headers ? 'Motionledger-Replay-Of')
 ORDER BY d.id
"""


def msg_id(epoch: int, seq: int) -> str:
    return f"replay-{epoch}-{seq}"


async def replay(
    conn: asyncpg.Connection,
    js: JetStreamContext,
    settings: Settings,
    *,
    ids: Sequence[int] = (),
    reason: str | None = None,
) -> list[Replayed]:
    """Publish the chosen dead letters again, in their original order; record each replay."""
    epoch = await conn.fetchval(
        "SELECT epoch FROM ledger.ingest_state WHERE stream = $1", settings.stream
    )
    if epoch is None:
        raise RuntimeError(f"stream {settings.stream} was never ingested: is this its database?")
    await conn.execute("SELECT pg_advisory_lock($1)", _REPLAY_LOCK)
    try:
        rows = await conn.fetch(_SELECT, list(ids), reason)
        found = {row["id"] for row in rows}
        out = [Replayed(i, "not_found") for i in ids if i not in found]
        for row in rows:
            if row["r_seq"] is not None:
                out.append(
                    Replayed(
                        row["id"],
                        "already_replayed",
                        stream_seq=row["r_seq"],
                        replayed_at=row["requested_at"].isoformat(timespec="seconds"),
                    )
                )
                continue
            key = msg_id(row["stream_epoch"], row["stream_seq"])
            ack = await js.publish(
                row["subject"],
                bytes(row["raw"]),
                stream=settings.stream,
                headers={"Nats-Msg-Id": key, REPLAY_HEADER: str(row["id"])},
            )
            await conn.execute(
                "INSERT INTO ledger.replays (dead_letter_id, msg_id, subject, stream, "
                "stream_epoch, stream_seq) VALUES ($1, $2, $3, $4, $5, $6)",
                row["id"],
                key,
                row["subject"],
                settings.stream,
                epoch,
                ack.seq,
            )
            out.append(Replayed(row["id"], "pending", stream_seq=ack.seq))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _REPLAY_LOCK)
    return sorted(out, key=lambda r: r.dead_letter_id)


async def verdicts(
    conn: asyncpg.Connection, settings: Settings, replays: list[Replayed], wait_s: float
) -> list[Replayed]:
    """Wait (up to `wait_s`) for the judge to pass the replayed messages; tell what it said."""
    pending = [r for r in replays if r.verdict == "pending" and r.stream_seq is not None]
    if not pending:
        return replays
    epoch, last = await conn.fetchrow(
        "SELECT epoch, stream_seq FROM ledger.ingest_state WHERE stream = $1", settings.stream
    )
    target = max(r.stream_seq or 0 for r in pending)
    deadline = time.monotonic() + wait_s
    while last < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        last = await conn.fetchval(
            "SELECT stream_seq FROM ledger.ingest_state WHERE stream = $1", settings.stream
        )
    seqs = [r.stream_seq for r in pending]
    logged = dict(
        await conn.fetch(
            "SELECT stream_seq, position FROM ledger.events "
            "WHERE stream_epoch = $1 AND stream_seq = ANY($2::bigint[])",
            epoch,
            seqs,
        )
    )
    rejected = {
        row["stream_seq"]: row
        for row in await conn.fetch(
            "SELECT stream_seq, id, reason FROM ledger.dead_letters "
            "WHERE stream_epoch = $1 AND stream_seq = ANY($2::bigint[])",
            epoch,
            seqs,
        )
    }
    for item in pending:
        seq = item.stream_seq or 0
        if seq in logged:
            item.verdict, item.position = "logged", logged[seq]
        elif seq in rejected:
            item.verdict = "rejected"
            item.reason, item.new_dead_letter_id = rejected[seq]["reason"], rejected[seq]["id"]
        elif seq <= last:
            item.verdict = "duplicate"  # judged, and its eventId was already in the log
    return replays


def _embedded_nats(settings: Settings) -> Settings:
    """The running embedded broker of `serve` (its port is remembered under data_dir)."""
    if settings.nats_url is not None:
        return settings
    try:
        port = int((Path(settings.data_dir) / "nats" / "port").read_text())
    except (OSError, ValueError):
        raise RuntimeError(
            "no broker configured and no embedded one found: set MOTIONLEDGER_NATS_URL "
            "or start `motionledger serve`"
        ) from None
    return settings.replace(nats_url=f"nats://127.0.0.1:{port}")


_WORDS: Final = {
    "logged": "re-judged and logged at position {position}",
    "rejected": "re-judged and rejected again: {reason} (dead letter {new_dead_letter_id})",
    "duplicate": "re-judged: a duplicate, its eventId is already in the log",
    "pending": "published at stream sequence {stream_seq}; not judged yet (is serve running?)",
    "already_replayed": "already replayed at {replayed_at} (stream sequence {stream_seq}); "
    "not again",
    "not_found": "no such dead letter",
}


def _describe(item: Replayed) -> str:
    fields: dict[str, Any] = msgspec.structs.asdict(item)
    return f"dead letter {item.dead_letter_id}: " + _WORDS[item.verdict].format(**fields)


async def run_replay(
    settings: Settings,
    dsn: str,
    *,
    ids: Sequence[int],
    reason: str | None,
    wait_s: float,
    as_json: bool,
    out: TextIO | None = None,
) -> int:
    """The command: 0 when every chosen dead letter was found, 1 otherwise, 2 on misuse."""
    out = out or sys.stdout
    if not ids and reason is None:
        print("motionledger dead-letters replay: give --id N or --reason R", file=sys.stderr)
        return 2
    conn = await connect(dsn)
    client = await broker.connect(_embedded_nats(settings), name="motionledger-replay")
    try:
        done = await replay(conn, client.jetstream(), settings, ids=ids, reason=reason)
        done = await verdicts(conn, settings, done, wait_s)
    finally:
        await client.close()
        await conn.close()
    if as_json:
        encoder = msgspec.json.Encoder()
        for item in done:
            out.write(encoder.encode(item).decode() + "\n")
    else:
        for item in done:
            print(_describe(item), file=out)
        if not done:
            print("no dead letters matched", file=out)
    return 1 if any(item.verdict == "not_found" for item in done) else 0
