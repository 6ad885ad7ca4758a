"""Bad input, property-based, against the real ingest: over every event type, any byte
string or mutated event on any subject is logged once or dead-lettered whole with a reason —
never lost, never fatal, never blocking the events behind it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motionledger.domain.events import (
    EVENT_TYPES,
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    Event,
    SessionStarted,
    StillCreated,
    StillUpdated,
)
from motionledger.services.verify import verify_chain
from tests.fuzz.conftest import Ledger
from tests.fuzz.strategies import IDS, encode, event, mutated, nested_json, same
from tests.support import events as ev

VALID, DUPLICATE, ANY = "valid", "duplicate", "any"
BODY_LIMIT = 262_144


@dataclass
class Sent:
    subject: str
    data: bytes
    expect: str | frozenset[str]  # VALID, DUPLICATE, ANY, or the reasons it may be rejected for
    body: dict[str, Any] | None = None  # a valid event's body, to compare with the log
    msg_id: str | None = None
    seq: int = 0


@dataclass
class Shoot:
    """One example's session, and the ids the judge's rules need to hold."""

    session: str = field(default_factory=lambda: f"F{uuid.uuid4().hex[:12]}")
    still: str = field(default_factory=lambda: f"st{uuid.uuid4().hex[:12]}")  # ids are global
    valid: list[dict[str, Any]] = field(default_factory=list)

    def fixed(self, cls: type[Event]) -> dict[str, Any]:
        ids: dict[str, Any] = {"eventId": uuid.uuid4().hex, "sessionId": self.session}
        if cls is SessionStarted:
            ids["sessionId"] = f"F{uuid.uuid4().hex[:12]}"  # a second start would be refused
        if cls in (CameraUpserted, CameraStateChanged, StillCreated):
            ids["cameraId"] = "c0"
        if cls is DirectorEvent:
            ids["cameraId"] = None
        if cls is StillUpdated:
            ids["stillCandidateId"] = self.still
        if cls is StillCreated:
            ids["stillCandidateId"] = f"st{uuid.uuid4().hex[:8]}"
        if cls is AssetCreated:
            ids["assetId"] = f"as{uuid.uuid4().hex[:8]}"
        return ids


def subject(root: str, body: dict[str, Any]) -> str:
    lane = body["type"].split(".")[0]
    return f"{root}.{lane}.{body['sessionId']}"


def director(session: str, **extra: Any) -> dict[str, Any]:
    return ev.director(session, **extra)


def refused(session: str) -> list[tuple[bytes, frozenset[str]]]:
    """Bodies PostgreSQL (or the decoder before it) cannot take, and the reasons allowed."""
    base = encode(director(session))[:-1]  # the object without its closing brace
    return [
        (base + b',"metadata":"a\\u0000b"}', frozenset({"unstorable"})),
        (base + b',"reason":"x\\u0000"}', frozenset({"unstorable"})),
        (base + b',"metadata":{"k\\u0000":1}}', frozenset({"unstorable"})),
        (base + b',"metadata":"\\udc00"}', frozenset({"invalid_json", "unstorable"})),
        (base + b',"metadata":"\\ud800"}', frozenset({"invalid_json", "unstorable"})),
        (base + b',"reason":"\xff\xfe"}', frozenset({"invalid_json"})),
        (base + b',"metadata":1e400}', frozenset({"invalid_event", "storage_refused"})),
        (base + b',"metadata":-1e400}', frozenset({"invalid_event", "storage_refused"})),
        (
            base + b',"metadata":' + b"9" * 140_000 + b"}",
            frozenset({"invalid_event", "storage_refused"}),
        ),
        (base + b',"metadata":NaN}', frozenset({"invalid_json"})),
        (base + b',"metadata":' + b"[" * 5000 + b"]" * 5000 + b"}", frozenset({"invalid_json"})),
        (base + b',"metadata":"' + b"x" * BODY_LIMIT + b'"}', frozenset({"too_large"})),
        (
            encode({**director(session), "timestampMs": 2**70}),
            frozenset({"invalid_event"}),
        ),
        (b"", frozenset({"invalid_json"})),
        (b"null", frozenset({"invalid_event"})),
        (b'{"type":"director.event"}', frozenset({"invalid_event"})),
    ]


@st.composite
def batches(draw: st.DrawFn, root: str) -> list[Sent]:
    shoot = Shoot()
    s = shoot.session
    start = ev.session_started(s)
    sent = [
        Sent(subject(root, start), encode(start), VALID, start, start["eventId"]),
    ]
    for setup in (ev.camera_upserted(s, "c0"), ev.still_created(s, shoot.still, camera="c0")):
        sent.append(Sent(subject(root, setup), encode(setup), VALID, setup, setup["eventId"]))
        shoot.valid.append(setup)
    kinds = draw(
        st.lists(
            st.sampled_from(
                [
                    "valid",
                    "mutated",
                    "bytes",
                    "refused",
                    "duplicate",
                    "wrong-subject",
                    "big",
                    "deep",
                ]
            ),
            min_size=1,
            max_size=30,
        )
    )
    for kind in kinds:
        cls = draw(st.sampled_from(EVENT_TYPES))
        body = draw(event(cls, shoot.fixed(cls)))
        if kind == "valid":
            sent.append(Sent(subject(root, body), encode(body), VALID, body, body["eventId"]))
            shoot.valid.append(body)
        elif kind == "mutated":
            data = draw(mutated(body, cls))
            sent.append(Sent(subject(root, body), data, ANY))
        elif kind == "bytes":
            where = draw(
                st.sampled_from(
                    [f"director.{s}", "bogus", "a.b.c.d", f"session.{s}", "camera.other"]
                )
            )
            sent.append(Sent(f"{root}.{where}", draw(st.binary(max_size=300)), ANY))
        elif kind == "refused":
            # each its own eventId: under one eventId, a second body would be a conflict
            # (`event_id_reused`, tested on its own), not the reason its bytes deserve
            data, reasons = draw(st.sampled_from(refused(s)))
            sent.append(Sent(f"{root}.director.{s}", data, reasons))
        elif kind == "duplicate" and shoot.valid:
            again = draw(st.sampled_from(shoot.valid))
            # the same event again under a new Nats-Msg-Id: past the broker's dedupe
            sent.append(
                Sent(subject(root, again), encode(again), DUPLICATE, msg_id=uuid.uuid4().hex)
            )
        elif kind == "wrong-subject":
            other = draw(IDS.filter(lambda x, own=body["sessionId"]: x != own))
            lane = body["type"].split(".")[0]
            sent.append(
                Sent(f"{root}.{lane}.{other}", encode(body), frozenset({"subject_mismatch"}))
            )
        elif kind == "deep":
            # JSON nested up to 20,000 levels in a free field: logged whole up to the limit
            nested = draw(nested_json())
            where = draw(st.sampled_from(["metadata", "audioSnapshot"]))
            body = director(s) if where == "metadata" else ev.music(s)
            data = encode(body)[:-1] + f',"{where}":'.encode() + nested.raw + b"}"
            if nested.accepted_as_metadata:
                body[where] = nested.value
                sent.append(Sent(subject(root, body), data, VALID, body, body["eventId"]))
            else:
                sent.append(Sent(subject(root, body), data, frozenset({"invalid_json"})))
        elif kind == "big":
            # big but within the limit: logged whole
            body = director(s, metadata={"blob": "é" * 100_000})
            sent.append(Sent(subject(root, body), encode(body), VALID, body, body["eventId"]))
    last = director(s)  # must not be blocked by anything before it
    sent.append(Sent(subject(root, last), encode(last), VALID, last, last["eventId"]))
    return sent


async def logged_before(db: Any, item: Sent) -> int | None:
    """The stream sequence of an earlier logged event with this message's eventId."""
    try:
        body = msgspec.json.decode(item.data)
    except (msgspec.DecodeError, RecursionError, ValueError):
        return None
    event_id = body.get("eventId") if isinstance(body, dict) else None
    if not isinstance(event_id, str):
        return None
    seq: int | None = await db.fetchval(
        "SELECT stream_seq FROM ledger.events WHERE event_id = $1 AND stream_seq < $2",
        event_id,
        item.seq,
    )
    return seq


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_every_message_is_logged_once_or_dead_lettered_whole(
    ledger: Ledger, data: st.DataObject
) -> None:
    batch = data.draw(batches(ledger.root), label="batch")
    db, js = ledger.db, ledger.js
    duplicates_before = await db.fetchval(
        "SELECT coalesce(max(duplicates), 0) FROM ledger.ingest_state"
    )
    for item in batch:
        headers = {"Nats-Msg-Id": item.msg_id} if item.msg_id else None
        ack = await js.publish(item.subject, item.data, headers=headers)
        assert not ack.duplicate, "the broker dropped a message the test meant to send"
        item.seq = ack.seq
    await ledger.wait_for(batch[-1].seq)

    epoch = await db.fetchval("SELECT epoch FROM ledger.ingest_state")
    first, last = batch[0].seq, batch[-1].seq
    logged = {
        r["stream_seq"]: r
        for r in await db.fetch(
            "SELECT stream_seq, event_id, body FROM ledger.events "
            "WHERE stream_epoch = $1 AND stream_seq BETWEEN $2 AND $3",
            epoch,
            first,
            last,
        )
    }
    dead = {
        r["stream_seq"]: r
        for r in await db.fetch(
            "SELECT stream_seq, subject, raw, reason FROM ledger.dead_letters "
            "WHERE stream_epoch = $1 AND stream_seq BETWEEN $2 AND $3",
            epoch,
            first,
            last,
        )
    }
    assert not logged.keys() & dead.keys(), "a message both logged and dead-lettered"
    duplicates = 0
    for item in batch:
        row, letter = logged.get(item.seq), dead.get(item.seq)
        where = f"seq {item.seq} on {item.subject}: {item.data[:200]!r}"
        if letter is not None:  # kept whole, with a reason
            assert bytes(letter["raw"]) == item.data, where
            assert letter["subject"] == item.subject, where
        if item.expect == VALID:
            assert row is not None, (
                f"valid event not logged ({letter and letter['reason']}): {where}"
            )
            assert item.body is not None
            stored = msgspec.json.decode(row["body"])
            assert row["event_id"] == item.body["eventId"]
            for key, value in item.body.items():
                if value is not None:
                    assert same(value, stored[key]), (where, key)
        elif item.expect == DUPLICATE:
            assert row is None, f"a duplicate was logged: {where}"
            assert letter is None, f"a duplicate was dead-lettered: {where}"
            duplicates += 1
        elif item.expect == ANY:
            if row is None and letter is None:
                # a mutation may carry an eventId the log already holds (mutations reuse
                # values across examples): then, and only then, it is a duplicate
                earlier = await logged_before(db, item)
                assert earlier is not None, f"message lost: {where}"
                duplicates += 1
        else:
            assert letter is not None, f"bad body not dead-lettered: {where}"
            assert letter["reason"] in item.expect, (letter["reason"], where)
    assert len(logged) + len(dead) + duplicates == len(batch), "messages unaccounted for"
    duplicates_after = await db.fetchval("SELECT max(duplicates) FROM ledger.ingest_state")
    assert duplicates_after - duplicates_before == duplicates
    assert (await verify_chain(db)).ok


async def test_a_flood_of_garbage_does_not_block_the_lane(ledger: Ledger) -> None:
    """Hundreds of bad bodies in a row, then good ones: every one accounted for, in order."""
    s = "FLOOD"
    start = ev.session_started(s)
    await ev.publish_events(ledger.js, ledger.root, [start])
    garbage = [data for data, _ in refused(s)] * 15
    for data in garbage:
        await ledger.js.publish(f"{ledger.root}.director.{s}", data)
    good = [director(s) for _ in range(50)]
    seqs = await ev.publish_events(ledger.js, ledger.root, good)
    await ledger.wait_for(seqs[-1])
    ids = [
        r[0] for r in await ledger.db.fetch("SELECT event_id FROM ledger.events ORDER BY position")
    ]
    assert ids == [start["eventId"]] + [e["eventId"] for e in good]
    raws = [
        bytes(r[0])
        for r in await ledger.db.fetch("SELECT raw FROM ledger.dead_letters ORDER BY id")
    ]
    assert raws == garbage
