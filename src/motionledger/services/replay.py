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
import time
from collections.abc import Sequence
from typing import Literal

import msgspec
from nats.js import JetStreamContext

from ..adapters.nats import broker
from ..adapters.postgres import ledger, replays
from ..adapters.postgres.database import Connection
from ..adapters.postgres.locks import Lock, lock, unlock
from ..errors import InvalidRequest
from ..settings import Settings
from .judging import REPLAY_HEADER

ReplayVerdict = Literal[
    "logged", "rejected", "duplicate", "pending", "already_replayed", "not_found"
]


class Replayed(msgspec.Struct, rename="camel"):
    """What became of one dead letter asked for."""

    dead_letter_id: int
    verdict: ReplayVerdict
    stream_seq: int | None = None
    position: int | None = None  # logged: where
    reason: str | None = None  # rejected: why (again)
    new_dead_letter_id: int | None = None
    replayed_at: str | None = None  # already_replayed: when it was


def msg_id(epoch: int, seq: int) -> str:
    return f"replay-{epoch}-{seq}"


async def _ingested(conn: Connection, stream: str) -> ledger.IngestState:
    state = await ledger.checkpoint(conn, stream)
    if state is None:
        raise InvalidRequest(f"stream {stream} was never ingested: is this its database?")
    return state


async def replay(
    conn: Connection,
    js: JetStreamContext,
    settings: Settings,
    *,
    ids: Sequence[int] = (),
    reason: str | None = None,
) -> list[Replayed]:
    """Publish the chosen dead letters again, in their original order; record each replay."""
    epoch = (await _ingested(conn, settings.stream)).epoch
    await lock(conn, Lock.REPLAY)
    try:
        candidates = await replays.chosen(conn, ids, reason)
        found = {c.id for c in candidates}
        out = [Replayed(i, "not_found") for i in ids if i not in found]
        for candidate in candidates:
            if candidate.replayed_seq is not None:
                when = candidate.replayed_at
                at = when.isoformat(timespec="seconds") if when is not None else None
                out.append(
                    Replayed(
                        candidate.id,
                        "already_replayed",
                        stream_seq=candidate.replayed_seq,
                        replayed_at=at,
                    )
                )
                continue
            key = msg_id(candidate.stream_epoch, candidate.stream_seq)
            seq = await broker.publish_raw(
                js,
                candidate.subject,
                candidate.raw,
                stream=settings.stream,
                headers={"Nats-Msg-Id": key, REPLAY_HEADER: str(candidate.id)},
            )
            await replays.record(
                conn, candidate.id, key, candidate.subject, settings.stream, epoch, seq
            )
            out.append(Replayed(candidate.id, "pending", stream_seq=seq))
    finally:
        await unlock(conn, Lock.REPLAY)
    return sorted(out, key=lambda r: r.dead_letter_id)


async def verdicts(
    conn: Connection, settings: Settings, replayed: list[Replayed], wait_s: float
) -> list[Replayed]:
    """Wait (up to `wait_s`) for the judge to pass the replayed messages; tell what it said."""
    pending = [r for r in replayed if r.verdict == "pending" and r.stream_seq is not None]
    if not pending:
        return replayed
    state = await _ingested(conn, settings.stream)
    target = max(r.stream_seq or 0 for r in pending)
    deadline = time.monotonic() + wait_s
    while state.stream_seq < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        state = await _ingested(conn, settings.stream)
    found = await replays.outcomes(conn, state.epoch, [r.stream_seq or 0 for r in pending])
    for item in pending:
        seq = item.stream_seq or 0
        if seq in found.logged:
            item.verdict, item.position = "logged", found.logged[seq]
        elif seq in found.rejected:
            item.verdict = "rejected"
            item.new_dead_letter_id, item.reason = found.rejected[seq]
        elif seq <= state.stream_seq:
            item.verdict = "duplicate"  # judged, and its eventId was already in the log
    return replayed
