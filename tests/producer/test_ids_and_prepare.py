"""Seeded UUIDv7 ids and the producer's checks before anything is sent (no broker needed)."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from motionledger.domain.events import (
    CameraStateChanged,
    DirectorEvent,
    MusicMoment,
    SessionStarted,
)
from motionledger.domain.uuid7 import timestamp_ms
from motionledger.producer import InvalidEvent, Producer, make_event
from motionledger.services.shoot import seeded_uuid7

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_seeded_ids_are_version_7_and_reproducible() -> None:
    made = [seeded_uuid7(1_700_000_000_000 + n, random.Random(n)) for n in range(100)]
    assert made == [seeded_uuid7(1_700_000_000_000 + n, random.Random(n)) for n in range(100)]
    for value in made:
        assert UUID7.match(value)
        assert uuid.UUID(value).version == 7
    assert [timestamp_ms(v) for v in made] == [1_700_000_000_000 + n for n in range(100)]


class _NoClient:
    """`prepare` needs no connection; this stands for a client that is never used."""


def producer(**options: object) -> Producer:
    return Producer(_NoClient(), subject_root="prod", **options)  # type: ignore[arg-type]


def test_prepare_fills_the_event_id_and_derives_subject_and_msg_id() -> None:
    event = DirectorEvent(event_id="", session_id="S1", timestamp_ms=5, event_type="cut")
    prepared = producer().prepare(event)
    assert UUID7.match(prepared.event.event_id)
    assert prepared.subject == "prod.director.S1"
    assert prepared.headers == {"Nats-Msg-Id": prepared.event.event_id}
    assert b'"eventId":"' + prepared.event.event_id.encode() in prepared.body
    kept = producer().prepare(
        make_event(SessionStarted, session_id="S2", session_type="music_demo")
    )
    assert kept.subject == "prod.session.S2"


def test_prepare_takes_plain_json_shaped_mappings() -> None:
    prepared = producer().prepare(
        {"type": "music.moment", "sessionId": "S1", "timestampMs": 9, "tempo": 120.0}
    )
    assert isinstance(prepared.event, MusicMoment)
    assert prepared.event.tempo == 120.0
    assert prepared.subject == "prod.music.S1"
    given = producer().prepare({"type": "session.completed", "eventId": "e-1", "sessionId": "S1"})
    assert given.event.event_id == "e-1"


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "director.event", "sessionId": "S1", "timestampMs": 1, "eventType": "jump"},
        {"type": "director.event", "sessionId": "bad id", "timestampMs": 1, "eventType": "cut"},
        {"type": "director.event", "sessionId": "S1", "eventType": "cut"},
        {"type": "nope", "sessionId": "S1"},
    ],
)
def test_invalid_events_are_refused_before_sending(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidEvent):
        producer().prepare(bad)


def test_structs_are_checked_too_and_size_is_limited() -> None:
    wrong = DirectorEvent(event_id="e1", session_id="S1", timestamp_ms=-1, event_type="cut")
    with pytest.raises(InvalidEvent):
        producer().prepare(wrong)
    big = make_event(
        DirectorEvent, session_id="S1", timestamp_ms=1, event_type="cut", metadata="x" * 2000
    )
    with pytest.raises(InvalidEvent, match="limit 1000"):
        producer(max_event_bytes=1000).prepare(big)


def test_state_changing_events_are_fenced_rate_lanes_pipelined() -> None:
    p = producer()
    cut = make_event(DirectorEvent, session_id="S1", timestamp_ms=1, event_type="cut")
    moment = make_event(MusicMoment, session_id="S1", timestamp_ms=1)
    change = make_event(CameraStateChanged, session_id="S1", camera_id="c1", is_active=False)
    assert not p.prepare(cut).fenced
    assert not p.prepare(moment).fenced
    assert p.prepare(change).fenced
    assert not producer(fence=False).prepare(change).fenced
