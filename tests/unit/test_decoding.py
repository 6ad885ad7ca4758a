"""Raw bytes → event or reason: the classification of bad bodies."""

from __future__ import annotations

import json

import msgspec
import pytest

from motionledger.domain.decoding import Decoded, check_subject, decode_event
from motionledger.domain.reasons import Reason, Rejection

GOOD = {
    "type": "director.event",
    "eventId": "e1",
    "sessionId": "S1",
    "timestampMs": 1,
    "eventType": "cut",
}


def reason_of(raw: bytes, limit: int = 262_144) -> Reason:
    outcome = decode_event(raw, limit)
    assert isinstance(outcome, Rejection), outcome
    return outcome.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b'{"type": "director.event",}',
        b"\xff\xfe\x00",
        b'"\\ud800"',  # a lone surrogate
        b'{"type": "director.event", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"NaN",
    ],
)
def test_invalid_json(raw: bytes) -> None:
    assert reason_of(raw) is Reason.INVALID_JSON


@pytest.mark.parametrize(
    "value",
    [
        {"eventId": "e1"},
        {"type": "director.cut", "eventId": "e1"},
        {"type": 5, "eventId": "e1"},
        {"type": None},
    ],
)
def test_unknown_type(value: object) -> None:
    outcome = decode_event(json.dumps(value).encode(), 1000)
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.UNKNOWN_TYPE, "type")


@pytest.mark.parametrize("raw", [b"[1,2]", b"17", b'"text"', b"null", b"true"])
def test_valid_json_that_is_not_an_object(raw: bytes) -> None:
    assert reason_of(raw) is Reason.INVALID_EVENT


def test_numbers_beyond_float_range_are_invalid() -> None:
    outcome = decode_event(json.dumps(GOOD).encode()[:-1] + b', "metadata": {"x": 1e400}}', 10_000)
    assert isinstance(outcome, Rejection)
    assert outcome.reason is Reason.INVALID_EVENT
    assert outcome.field is not None
    assert outcome.field.startswith("metadata")


def test_too_large_is_checked_before_decoding() -> None:
    raw = json.dumps({**GOOD, "reason": "x" * 2000}).encode()
    assert reason_of(raw, limit=1000) is Reason.TOO_LARGE
    assert isinstance(decode_event(raw, len(raw)), Decoded)


@pytest.mark.parametrize(
    "extra",
    [
        {"reason": "a\u0000b"},
        {"metadata": {"k": ["x\u0000"]}},
        {"metadata": {"ke\u0000y": 1}},
    ],
)
def test_nul_is_unstorable(extra: dict[str, object]) -> None:
    assert reason_of(json.dumps({**GOOD, **extra}).encode()) is Reason.UNSTORABLE


def test_an_escaped_backslash_before_u0000_is_fine() -> None:
    raw = json.dumps({**GOOD, "reason": "\\u0000 is how JSON writes NUL"}).encode()
    outcome = decode_event(raw, 10_000)
    assert isinstance(outcome, Decoded)
    assert outcome.event.reason == "\\u0000 is how JSON writes NUL"  # type: ignore[union-attr]


def test_field_paths_point_inside_metadata_free_fields() -> None:
    outcome = decode_event(json.dumps({**GOOD, "timestampMs": "soon"}).encode(), 10_000)
    assert isinstance(outcome, Rejection)
    assert outcome.field == "timestampMs"
    assert "int" in outcome.detail


def test_subject_must_match_lane_and_session() -> None:
    outcome = decode_event(json.dumps(GOOD).encode(), 10_000)
    assert isinstance(outcome, Decoded)
    assert check_subject(outcome.event, "production.director.S1", "production") is None
    for wrong in (
        "production.camera.S1",
        "production.director.S2",
        "other.director.S1",
        "production.director.S1.extra",
        "production.director",
    ):
        rejection = check_subject(outcome.event, wrong, "production")
        assert rejection is not None
        assert rejection.reason is Reason.SUBJECT_MISMATCH


def test_decoded_body_round_trips() -> None:
    outcome = decode_event(
        json.dumps({**GOOD, "metadata": {"b": 1, "a": [1.5, "x"]}}).encode(), 10_000
    )
    assert isinstance(outcome, Decoded)
    again = decode_event(outcome.body, 10_000)
    assert isinstance(again, Decoded)
    assert again.body == outcome.body
    assert msgspec.json.decode(outcome.body)["metadata"] == {"a": [1.5, "x"], "b": 1}
