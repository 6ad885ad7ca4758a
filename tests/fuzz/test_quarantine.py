"""A message whose handling raises is dead-lettered as `unprocessable` and the lane goes on.

A bug is injected at the seams the Batcher calls per message (its decode, judge and
row-building functions), for one chosen message only; PostgreSQL and NATS are real."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from motionledger.adapters.nats.puller import RawMessage
from motionledger.adapters.postgres import ledger
from motionledger.services import judging
from motionledger.services.judging import Batcher, Judged
from motionledger.services.memory import JudgeMemory
from tests.fuzz.conftest import Ledger
from tests.support import events as ev

ROOT = "q"
STREAM = "QUARANTINE"
STEPS = ["decoding", "judging", "building its log row"]


def message(seq: int, body: dict[str, Any]) -> RawMessage:
    lane = body["type"].split(".")[0]
    subject = f"{ROOT}.{lane}.{body['sessionId']}"
    return RawMessage(seq, subject, msgspec.json.encode(body), b"", time.time_ns())


def inject_bug(monkeypatch: pytest.MonkeyPatch, step: str, victim: str, error: Exception) -> None:
    """Make `step` raise for the message whose eventId is `victim` (and only for it)."""

    def failing(real: Callable[..., Any], *, about: int, after: bool) -> Callable[..., Any]:
        def step_function(*args: Any, **kwargs: Any) -> Any:
            subject = args[about]  # the raw bytes, or the event, the step is handling
            hit = (
                victim.encode() in subject
                if isinstance(subject, bytes)
                else (subject.event_id == victim)
            )
            if hit and not after:
                raise error
            result = real(*args, **kwargs)
            if hit:  # after the real step did its work (the judge learned from it)
                raise error
            return result

        return step_function

    if step == "decoding":
        bug = failing(judging.decode_event, about=0, after=False)
        monkeypatch.setattr(judging, "decode_event", bug)
    elif step == "judging":
        bug = failing(judging.judge_and_learn, about=0, after=True)
        monkeypatch.setattr(judging, "judge_and_learn", bug)
    else:
        bug = failing(judging.event_row, about=1, after=False)
        monkeypatch.setattr(judging, "event_row", bug)


async def judge_and_commit(
    db: asyncpg.Connection, batcher: Batcher, messages: list[RawMessage], from_seq: int
) -> Judged:
    state = await ledger.ingest_state(db, STREAM, "created", messages[-1].seq, datetime.now(UTC))
    judged = await batcher.judge(
        messages,
        stream=STREAM,
        epoch=state.epoch,
        from_seq=from_seq,
        head=await ledger.head(db),
        recorded_at=datetime.now(UTC),
    )
    await ledger.commit_batch(db, judged.write)
    batcher.forget_before(judged.write.to_seq)
    return judged


def new_batcher(db: asyncpg.Connection) -> Batcher:
    return Batcher(
        root=ROOT,
        max_event_bytes=262_144,
        memory=JudgeMemory(),
        lookup_facts=lambda keys: ledger.lookup_facts(db, keys),
        lookup_priors=lambda ids: ledger.priors(db, ids, 262_144),
        lookup_dead_letters=lambda ids: ledger.dead_letters_by_id(db, ids),
    )


async def outcomes(db: asyncpg.Connection) -> dict[int, tuple[str, str | None]]:
    """stream_seq -> ("logged", None) or (reason, detail)."""
    out: dict[int, tuple[str, str | None]] = {
        r[0]: ("logged", None) for r in await db.fetch("SELECT stream_seq FROM ledger.events")
    }
    for seq, reason, detail in await db.fetch(
        "SELECT stream_seq, reason, detail FROM ledger.dead_letters"
    ):
        assert seq not in out
        out[seq] = (reason, detail)
    return out


@pytest.mark.parametrize("step", STEPS)
async def test_one_failing_message_is_dead_lettered_and_the_batch_goes_in(
    db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    doomed = ev.session_started("S")
    batch = [
        doomed,
        ev.director("S"),  # its session's start is the doomed message: unknown
        ev.session_started("T"),
        ev.director("T"),
        ev.camera_upserted("T", "c1"),
    ]
    bug = RuntimeError(f"injected bug for {doomed['eventId']}: \ud800 and \x00 in the text")
    inject_bug(monkeypatch, step, doomed["eventId"], bug)
    batcher = new_batcher(db)
    messages = [message(seq, body) for seq, body in enumerate(batch, start=1)]
    judged = await judge_and_commit(db, batcher, messages, from_seq=0)

    found = await outcomes(db)
    reason, detail = found[1]
    assert reason == "unprocessable"
    assert detail is not None
    assert detail.startswith(f"{step} failed: RuntimeError: injected bug for {doomed['eventId']}")
    assert "\\ud800" in detail  # storable text, the error still legible
    assert "\x00" not in detail
    # nothing learned from the failed message survives it, in this batch or the next
    assert found[2][0] == "unknown_session"
    assert {seq: found[seq][0] for seq in (3, 4, 5)} == dict.fromkeys((3, 4, 5), "logged")
    assert judged.reasons == {"unprocessable": 1, "unknown_session": 1}
    raw = await db.fetchval("SELECT raw FROM ledger.dead_letters WHERE stream_seq = 1")
    assert bytes(raw) == messages[0].data

    monkeypatch.undo()  # the bug is fixed: the same session's events are judged normally
    later = [message(6, ev.director("S")), message(7, ev.director("T"))]
    await judge_and_commit(db, batcher, later, from_seq=5)
    found = await outcomes(db)
    assert (found[6][0], found[7][0]) == ("unknown_session", "logged")


async def test_a_memory_error_is_the_machine_not_the_message(
    db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = ev.session_started("S")
    inject_bug(monkeypatch, "judging", event["eventId"], MemoryError())
    with pytest.raises(MemoryError):
        await judge_and_commit(db, new_batcher(db), [message(1, event)], from_seq=0)
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0


@pytest.mark.parametrize("step", STEPS)
async def test_the_running_daemon_goes_on_past_a_message_that_meets_a_bug(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The same through NATS and the whole ingest loop: the lane never stops."""
    start, doomed = ev.session_started("S"), ev.director("S")
    after = [ev.director("S") for _ in range(20)]
    inject_bug(monkeypatch, step, doomed["eventId"], KeyError("a bug"))
    seqs = await ev.publish_events(ledger.js, ledger.root, [start, doomed, *after])
    await ledger.wait_for(seqs[-1])
    logged = [r[0] for r in await ledger.db.fetch("SELECT event_id FROM ledger.events")]
    assert logged == [start["eventId"]] + [e["eventId"] for e in after]
    letter = await ledger.db.fetchrow("SELECT * FROM ledger.dead_letters")
    assert (letter["reason"], letter["event_id"]) == ("unprocessable", doomed["eventId"])
    assert bytes(letter["raw"]) == msgspec.json.encode(doomed)
    assert letter["detail"] == f"{step} failed: KeyError: 'a bug'"
