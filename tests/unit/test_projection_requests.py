"""Write bodies, row shapes, UUIDv7 and the events cursor: the pure parts of the endpoint."""

from __future__ import annotations

import re
import uuid

import msgspec
import pytest

from motionledger.domain.events import DirectorEvent, SessionStarted, StillUpdated
from motionledger.domain.projections import PROJECTIONS
from motionledger.domain.requests import BY_PATH, WRITES, EventBatchBody
from motionledger.domain.rows import ROWS, EventsPage, Timeline
from motionledger.domain.uuid7 import timestamp_ms, uuid7
from motionledger.errors import BadCursor
from motionledger.services.queries import decode_cursor, encode_cursor


def test_there_are_eleven_single_event_write_routes() -> None:
    assert sorted(w.path for w in WRITES) == sorted(
        [
            "session/start",
            "session/update",
            "session/complete",
            "camera/upsert",
            "camera/state",
            "event",
            "hero-pose",
            "still-candidate",
            "still/update",
            "music-moment",
            "asset",
        ]
    )


def test_bodies_are_the_events_minus_type_with_server_made_ids() -> None:
    start = BY_PATH["session/start"]
    body = msgspec.json.decode(b'{"sessionType": "music_demo", "title": "x"}', type=start.body)
    event = start.build(body, make_id=iter(["e1", "s1"]).__next__)
    assert event == SessionStarted(
        event_id="e1", session_id="s1", session_type="music_demo", title="x"
    )
    given = msgspec.json.decode(
        b'{"eventId": "mine", "sessionId": "S", "sessionType": "music_demo"}', type=start.body
    )
    assert start.build(given).event_id == "mine"
    assert start.build(given).session_id == "S"


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("session/start", b'{"sessionType": "nope"}', "$.sessionType"),
        ("session/start", b'{"sessionType": "music_demo", "type": "x"}', "type"),
        ("session/start", b'{"sessionType": "music_demo", "sessionId": "a b"}', "$.sessionId"),
        ("camera/state", b'{"sessionId": "S", "cameraId": "c", "isActive": "true"}', "$.isActive"),
        ("event", b'{"sessionId": "S", "timestampMs": "1", "eventType": "cut"}', "$.timestampMs"),
        ("event", b'{"sessionId": "S", "eventType": "cut"}', "timestampMs"),
        ("hero-pose", b'{"sessionId": "S", "timestampMs": 1, "eventType": "cut"}', "$.eventType"),
        ("still/update", b'{"sessionId": "S"}', "stillCandidateId"),
    ],
)
def test_bodies_validate_strictly(path: str, body: bytes, where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(where)):
        msgspec.json.decode(body, type=BY_PATH[path].body)


def test_hero_pose_and_still_update() -> None:
    hero = BY_PATH["hero-pose"]
    body = msgspec.json.decode(b'{"sessionId": "S", "timestampMs": 7}', type=hero.body)
    event = hero.build(body)
    assert isinstance(event, DirectorEvent)
    assert event.event_type == "hero_pose_marker"
    update = BY_PATH["still/update"]
    body = msgspec.json.decode(b'{"stillCandidateId": "st", "score": 1}', type=update.body)
    assert body.session_id is None  # the route fills it in from the still
    event = update.build(msgspec.structs.replace(body, session_id="S"))
    assert event == StillUpdated(
        event_id=event.event_id, session_id="S", still_candidate_id="st", score=1.0
    )


def test_batch_body() -> None:
    body = msgspec.json.decode(
        b'{"sessionId": "S", "events": [{"timestampMs": 1, "eventType": "cut"}]}',
        type=EventBatchBody,
    )
    assert body.events[0].event_type == "cut"
    with pytest.raises(msgspec.ValidationError, match="length >= 1"):
        msgspec.json.decode(b'{"sessionId": "S", "events": []}', type=EventBatchBody)


def test_row_structs_follow_the_tables() -> None:
    for projection in PROJECTIONS:
        fields = msgspec.structs.fields(ROWS[projection.name])
        names = [f.encode_name for f in fields]
        assert names[:2] == ["_id", "_creationTime"]
        assert names[-2:] == ["createdAt", "updatedAt"]
        assert names[2:-2] == [c.json_name for c in projection.columns]
    assert [f.encode_name for f in msgspec.structs.fields(Timeline)] == [
        "session",
        "cameras",
        "directorEvents",
        "stillCandidates",
        "musicMoments",
        "assets",
    ]
    assert [f.encode_name for f in msgspec.structs.fields(EventsPage)] == [
        "page",
        "isDone",
        "continueCursor",
    ]


def test_uuid7_is_version_7_and_ordered() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert timestamp_ms(uuid7(lambda: 1_700_000_000_123)) >= 1_700_000_000_123
    frozen = [uuid7(lambda: 42) for _ in range(5000)]  # one millisecond, thousands of ids
    assert frozen == sorted(frozen)


def test_cursor_round_trip_and_rejects() -> None:
    for key in [(0, 1), (-1, 0), (253_402_300_799_999, 10**12)]:
        assert decode_cursor(encode_cursor(*key)) == key
    assert decode_cursor(None) == (-1, 0)
    assert decode_cursor("") == (-1, 0)
    bad_ones = [
        "x",
        "%%%",
        encode_cursor(1, 2) + "!!",
        "MTo1OjI",  # a cursor of another version
        "1.",
        ".5",
        "-2.1",
        "1.2.3",
        # numbers past a bigint (a hand-made cursor once answered 500)
        f"1.{2**63}",
        f"{10**16}.1",
    ]
    for bad in bad_ones:
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_every_cursor_the_schema_admits_is_accepted() -> None:
    """The OpenAPI pattern is the whole rule: what it admits decodes, within a bigint."""
    import re

    from hypothesis import given
    from hypothesis import strategies as st

    from motionledger.services.queries import CURSOR_PATTERN

    @given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
    def admitted(cursor: str) -> None:
        timestamp, position = decode_cursor(cursor)
        assert -1 <= timestamp < 2**63
        assert 0 <= position < 2**63

    assert re.fullmatch(CURSOR_PATTERN, encode_cursor(253_402_300_799_999, 10**18 - 1))
    admitted()
