"""The batcher without I/O: raw messages in, log rows and dead letters out, with the ledger's
knowledge handed in by fake look-ups that count how often they are asked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from motionledger.adapters.nats.puller import RawMessage
from motionledger.adapters.postgres.ledger import Head
from motionledger.domain.canonical import GENESIS_HASH, canonical_json, chain_hash
from motionledger.domain.events import DECODER
from motionledger.domain.judge import FactKeys, Knowledge, Prior
from motionledger.domain.reasons import Reason, Rejection
from motionledger.services.judging import REPLAY_HEADER, Batcher, Judged
from motionledger.services.memory import JudgeMemory
from tests.support import events as ev

ROOT = "production"


def body_of(event: dict[str, Any]) -> bytes:
    return canonical_json(DECODER.decode(msgspec.json.encode(event)))


AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeLedger:
    """What the log holds, as the batcher's two look-ups see it."""

    def __init__(
        self,
        known: Knowledge | None = None,
        dead_letters: dict[int, tuple[str | None, bytes]] | None = None,
    ) -> None:
        self.known = known or Knowledge()
        self.dead_letters = dead_letters or {}
        self.fact_lookups: list[FactKeys] = []
        self.id_lookups: list[set[str]] = []

    async def lookup_facts(self, keys: FactKeys) -> Knowledge:
        self.fact_lookups.append(keys)
        found = Knowledge()
        found.sessions = keys.sessions & self.known.sessions
        found.cameras = keys.cameras & self.known.cameras
        found.stills = {s: o for s, o in self.known.stills.items() if s in keys.stills}
        found.assets = keys.assets & self.known.assets
        return found

    async def lookup_priors(self, ids: Iterable[str]) -> dict[str, Prior]:
        asked = set(ids)
        self.id_lookups.append(asked)
        return {i: p for i, p in self.known.priors.items() if i in asked}

    async def lookup_dead_letters(self, ids: Iterable[int]) -> dict[int, tuple[str | None, bytes]]:
        return {i: d for i, d in self.dead_letters.items() if i in set(ids)}

    def batcher(self, max_event_bytes: int = 262_144) -> Batcher:
        return Batcher(
            root=ROOT,
            max_event_bytes=max_event_bytes,
            memory=JudgeMemory(),
            lookup_facts=self.lookup_facts,
            lookup_priors=self.lookup_priors,
            lookup_dead_letters=self.lookup_dead_letters,
        )


def messages(*bodies: dict[str, Any] | bytes, first_seq: int = 1) -> list[RawMessage]:
    out = []
    for seq, body in enumerate(bodies, start=first_seq):
        if isinstance(body, dict):
            raw, subject = msgspec.json.encode(body), ev.subject_of(ROOT, body)
        else:
            raw, subject = body, f"{ROOT}.director.S1"
        out.append(RawMessage(seq, subject, raw, b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n", 1))
    return out


async def judge(batcher: Batcher, batch: list[RawMessage], head: Head | None = None) -> Judged:
    return await batcher.judge(
        batch,
        stream="PRODUCTION",
        epoch=1,
        from_seq=batch[0].seq - 1,
        head=head or Head(0, GENESIS_HASH),
        recorded_at=AT,
    )


async def test_accepted_events_get_consecutive_positions_and_a_chained_hash() -> None:
    fake = FakeLedger()
    start, cut = ev.session_started("S1"), ev.director("S1", 10)
    judged = await judge(fake.batcher(), messages(start, cut), Head(41, b"\x07" * 32))
    rows = judged.write.events
    assert [row.position for row in rows] == [42, 43]
    assert [row.event_id for row in rows] == [start["eventId"], cut["eventId"]]
    assert rows[0].hash == chain_hash(b"\x07" * 32, 42, start["eventId"], rows[0].body)
    assert rows[1].hash == chain_hash(rows[0].hash, 43, cut["eventId"], rows[1].body)
    assert (rows[1].lane, rows[1].type, rows[1].timestamp_ms) == ("director", "director.event", 10)
    assert (judged.write.from_seq, judged.write.to_seq, judged.write.head) == (0, 2, 43)
    assert judged.head.position == 43
    assert judged.write.dead_letters == []


async def test_facts_are_looked_up_once_then_remembered() -> None:
    fake = FakeLedger(Knowledge(sessions={"S1"}))
    batcher = fake.batcher()
    await judge(batcher, messages(ev.director("S1", 1), ev.director("S1", 2)))
    await judge(batcher, messages(ev.director("S1", 3), first_seq=3))
    assert [keys.sessions for keys in fake.fact_lookups] == [{"S1"}]


async def test_a_state_rejection_is_dead_lettered_with_its_reason_and_identity() -> None:
    fake = FakeLedger()
    cut = ev.director("S9", 5)
    judged = await judge(fake.batcher(), messages(cut))
    [dead] = judged.write.dead_letters
    assert (dead.reason, dead.event_id, dead.session_id, dead.type) == (
        Reason.UNKNOWN_SESSION,
        cut["eventId"],
        "S9",
        "director.event",
    )
    assert dead.raw == msgspec.json.encode(cut)
    assert msgspec.json.decode(dead.headers) == {"Nats-Msg-Id": ["x"]}
    assert judged.write.events == []
    assert judged.reasons == {"unknown_session": 1}


async def test_a_state_rejection_of_an_event_logged_long_ago_is_a_duplicate() -> None:
    """The eventId is in the log beyond the judge's memory: asked for, and found."""
    cut = ev.director("S1", 5)
    fake = FakeLedger(Knowledge(priors={cut["eventId"]: Prior(body_of(cut))}))
    judged = await judge(fake.batcher(), messages(cut))
    assert fake.id_lookups == [{cut["eventId"]}]
    assert judged.write.events == []
    assert judged.write.dead_letters == []
    assert judged.write.duplicates == 1


async def test_an_event_accepted_earlier_in_the_batch_is_known_to_later_ones() -> None:
    fake = FakeLedger()
    start = ev.session_started("S1")
    again = dict(start)  # the same eventId: a duplicate of the first
    judged = await judge(fake.batcher(), messages(start, ev.camera_upserted("S1", "c1"), again))
    assert len(judged.write.events) == 2
    assert judged.write.duplicates == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", Reason.INVALID_JSON),
        (b'{"type":"nope","eventId":"e1","sessionId":"S1"}', Reason.UNKNOWN_TYPE),
        (b'{"type":"director.event","eventId":"e1","sessionId":"S1"}', Reason.INVALID_EVENT),
    ],
)
async def test_a_body_that_is_not_an_event_is_dead_lettered_whole(raw: bytes, reason: str) -> None:
    judged = await judge(FakeLedger().batcher(), messages(raw))
    [dead] = judged.write.dead_letters
    assert (dead.reason, dead.raw, dead.stream_seq) == (reason, raw, 1)


async def test_an_event_on_another_sessions_subject_is_refused() -> None:
    cut = ev.director("S1", 5)
    [message] = messages(cut)
    message.subject = f"{ROOT}.director.S2"
    judged = await judge(FakeLedger(Knowledge(sessions={"S1"})).batcher(), [message])
    assert judged.write.dead_letters[0].reason == Reason.SUBJECT_MISMATCH


async def test_forced_verdicts_and_skipped_messages_apply_until_committed_past() -> None:
    fake = FakeLedger(Knowledge(sessions={"S1"}))
    batcher = fake.batcher()
    batch = messages(ev.director("S1", 1), ev.director("S1", 2), ev.director("S1", 3))
    batcher.forced[1] = Rejection(Reason.STORAGE_REFUSED, "PostgreSQL refused it")
    batcher.skip.add(2)
    judged = await judge(batcher, batch)
    assert [d.reason for d in judged.write.dead_letters] == [Reason.STORAGE_REFUSED]
    assert [r.stream_seq for r in judged.write.events] == [3]
    batcher.forget_before(3)
    assert not batcher.forced
    assert not batcher.skip


async def test_the_same_eventid_with_another_body_is_a_conflict() -> None:
    cut = ev.director("S1", 5)
    fake = FakeLedger(Knowledge(sessions={"S1"}, priors={cut["eventId"]: Prior(body_of(cut))}))
    batcher = fake.batcher()
    batcher.memory.event_ids.put(cut["eventId"], True)  # judged lately, as memory knows
    judged = await judge(batcher, messages({**cut, "timestampMs": 6}))
    [dead] = judged.write.dead_letters
    assert (dead.reason, dead.field, dead.repeat_of) == (Reason.EVENT_ID_REUSED, "eventId", None)
    assert fake.id_lookups == [{cut["eventId"]}]


async def test_an_eventid_rejected_before_gets_the_same_rejection_however_the_state_moved() -> None:
    cut = ev.director("S1", 5)
    first = Rejection(Reason.UNKNOWN_SESSION, "session S1 was never started")
    prior = Prior(body_of(cut), first, dead_letter_id=17)
    # the session exists now: without the prior the cut would be logged
    fake = FakeLedger(Knowledge(sessions={"S1"}, priors={cut["eventId"]: prior}))
    batcher = fake.batcher()
    batcher.memory.event_ids.put(cut["eventId"], True)
    judged = await judge(batcher, messages(cut))
    [dead] = judged.write.dead_letters
    assert (dead.reason, dead.repeat_of) == (Reason.UNKNOWN_SESSION, 17)
    assert "dead letter 17" in dead.detail
    assert judged.write.events == []


async def test_within_one_batch_a_rejected_eventid_stays_rejected() -> None:
    cut = ev.director("S1", 5)
    fake = FakeLedger()
    judged = await judge(fake.batcher(), messages(cut, ev.session_started("S1"), cut))
    assert [d.reason for d in judged.write.dead_letters] == [Reason.UNKNOWN_SESSION] * 2
    assert "earlier in the same batch" in judged.write.dead_letters[1].detail
    assert [r.type for r in judged.write.events] == ["session.started"]


async def test_a_replay_of_a_dead_letter_is_judged_afresh_and_a_forged_one_is_not() -> None:
    cut = ev.director("S1", 5)
    raw = msgspec.json.encode(cut)
    first = Rejection(Reason.UNKNOWN_SESSION, "session S1 was never started")
    prior = Prior(body_of(cut), first, dead_letter_id=3)
    fake = FakeLedger(
        Knowledge(sessions={"S1"}, priors={cut["eventId"]: prior}),
        dead_letters={3: (cut["eventId"], raw)},
    )
    for claimed, logged in (("3", True), ("4", False)):
        batcher = fake.batcher()
        batcher.memory.event_ids.put(cut["eventId"], True)
        [message] = messages(cut)
        message.headers = f"NATS/1.0\r\nMotionledger-Replay-Of: {claimed}\r\n\r\n".encode()
        judged = await judge(batcher, [message])
        assert bool(judged.write.events) is logged, claimed
        assert judged.write.fresh_ids == []  # a replay is not held to its first verdict


async def test_the_eventids_a_batch_logs_are_handed_to_the_commits_guard() -> None:
    start, cut = ev.session_started("S1"), ev.director("S1", 1)
    judged = await judge(FakeLedger().batcher(), messages(start, cut))
    assert judged.write.fresh_ids == [start["eventId"], cut["eventId"]]


async def test_a_remembered_rejection_does_not_outlive_a_replay_that_logged_the_eventid() -> None:
    cut = ev.director("S1", 5)
    raw = msgspec.json.encode(cut)
    rejection = Rejection(Reason.UNKNOWN_SESSION, "session S1 was never started")
    fake = FakeLedger(
        Knowledge(priors={cut["eventId"]: Prior(body_of(cut), rejection, 7)}),
        dead_letters={7: (cut["eventId"], raw)},
    )
    batcher = fake.batcher()
    batcher.memory.event_ids.put(cut["eventId"], True)
    first = await judge(batcher, messages(cut, first_seq=1))  # the same rejection, remembered
    assert [d.repeat_of for d in first.write.dead_letters] == [7]
    batcher.forget_before(1)
    fake.known.sessions.add("S1")
    batcher.memory.sessions.put("S1", True)
    [replay] = messages(cut, first_seq=2)
    replay.headers = f"NATS/1.0\r\n{REPLAY_HEADER}: 7\r\n\r\n".encode()
    replayed = await judge(batcher, [replay])  # the operator's replay: judged afresh, logged
    assert len(replayed.write.events) == 1
    batcher.forget_before(2)
    fake.known.priors[cut["eventId"]] = Prior(body_of(cut))  # the log has it now
    again = await judge(batcher, messages(cut, first_seq=3))
    assert again.write.dead_letters == []
    assert again.write.duplicates == 1


async def test_every_copy_of_an_eventid_judged_long_ago_gets_its_first_verdict() -> None:
    """[E with another body (a state rejection), E with the logged body], E logged beyond
    memory: the first copy is a conflict, the second a duplicate."""
    cut = ev.director("S-GONE", 5)
    other = {**cut, "timestampMs": 6}
    fake = FakeLedger(Knowledge(priors={cut["eventId"]: Prior(body_of(cut))}))
    judged = await judge(fake.batcher(), messages(other, cut))
    assert [d.reason for d in judged.write.dead_letters] == [Reason.EVENT_ID_REUSED]
    assert judged.write.duplicates == 1


def test_retries_compare_the_body_as_the_judge_does() -> None:
    """1, 1.0 and true are equal to Python, not to the judge: a retry must match exactly."""
    from motionledger.domain.events import DirectorEvent
    from motionledger.domain.requests import same_request

    def cut(metadata: object) -> DirectorEvent:
        return DirectorEvent(
            event_id="e1", session_id="S1", timestamp_ms=1, event_type="cut", metadata=metadata
        )

    assert same_request(cut({"n": 1}), cut({"n": 1}), frozenset())
    assert not same_request(cut({"n": 1}), cut({"n": 1.0}), frozenset())
    assert not same_request(cut({"n": 1}), cut({"n": True}), frozenset())
