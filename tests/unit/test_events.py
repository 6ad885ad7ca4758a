"""Every event type: valid minimal and full forms, and each way of being invalid."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from motionledger.domain import events as E
from motionledger.domain.decoding import Decoded, decode_event
from motionledger.domain.reasons import Reason, Rejection

MINIMAL: dict[str, dict[str, Any]] = {
    "session.started": {"sessionType": "music_demo"},
    "session.updated": {},
    "session.completed": {},
    "camera.upserted": {
        "cameraId": "cam-1",
        "sourceType": "insta360_x4",
        "role": "wide",
        "priorityWeight": 0.5,
        "isActive": True,
    },
    "camera.state_changed": {"cameraId": "cam-1"},
    "director.event": {"timestampMs": 1_700_000_000_000, "eventType": "hero_pose_marker"},
    "still.created": {
        "stillCandidateId": "st_1",
        "cameraId": "cam-1",
        "timestampMs": 5,
        "score": 0.91,
    },
    "still.updated": {"stillCandidateId": "st_1"},
    "music.moment": {"timestampMs": 42},
    "asset.created": {"assetId": "a1", "assetType": "video_master", "path": "/x.mov"},
}

FULL_EXTRA: dict[str, dict[str, Any]] = {
    "session.started": {
        "status": "rolling",
        "title": "T",
        "notes": "n",
        "directorMode": "pose",
        "musicMode": "live_sketch",
        "projectSlug": "p",
        "startedAt": 1,
        "metadata": {"a": [1, 2.5, None, True]},
    },
    "session.updated": {
        "sessionType": "photoshoot_review",
        "status": "paused",
        "title": "t",
        "notes": "n",
        "directorMode": "manual",
        "musicMode": "disabled",
        "projectSlug": "q",
        "metadata": 3,
    },
    "session.completed": {"status": "cancelled", "notes": "bye"},
    "camera.upserted": {
        "deviceName": "d",
        "isWideFallback": False,
        "positionHint": "left",
        "metadata": "m",
    },
    "camera.state_changed": {"isActive": False, "role": "detail", "priorityWeight": 2},
    "director.event": {"cameraId": "c", "reason": "r", "score": 0.1, "metadata": [1]},
    "still.created": {
        "imagePath": "/s.jpg",
        "poseLabel": "arms_up",
        "sourceEventId": "0190c5a2-aaaa-7bbb-8ccc-000000000000",
        "isFavorite": True,
        "selectedForEdit": False,
        "metadata": {},
    },
    "still.updated": {
        "imagePath": "/t.jpg",
        "score": 1,
        "poseLabel": "p",
        "isFavorite": False,
        "selectedForEdit": True,
        "metadata": None,
    },
    "music.moment": {
        "section": "drop",
        "tempo": 128,
        "confidence": 0.9,
        "phase": 0.25,
        "energy": 0.7,
        "motionSignature": "sig",
        "audioSnapshot": {"rms": 0.3},
        "metadata": None,
    },
    "asset.created": {"source": "post", "status": "ready", "metadata": {"k": "v"}},
}


def body(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "eventId": "evt-1", "sessionId": "S_1", **MINIMAL[kind], **fields}


def decode(value: Any) -> Decoded | Rejection:
    return decode_event(json.dumps(value).encode(), 262_144)


def test_every_type_is_covered() -> None:
    assert set(MINIMAL) == set(E.EVENT_TYPE_BY_TAG) == set(FULL_EXTRA)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_minimal_and_full_forms_decode(kind: str) -> None:
    for fields in ({}, FULL_EXTRA[kind]):
        outcome = decode(body(kind, **fields))
        assert isinstance(outcome, Decoded), outcome
        assert outcome.event.type_name == kind
        assert isinstance(outcome.event, E.EVENT_TYPE_BY_TAG[kind])
        assert outcome.event.lane == kind.split(".")[0].replace("director", "director")


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_optional_fields_may_be_null(kind: str) -> None:
    nulls = {k: None for k in FULL_EXTRA[kind]}
    outcome = decode(body(kind, **nulls))
    assert isinstance(outcome, Decoded), outcome
    # null means absent: the stored body does not carry it
    assert all(k not in msgspec.json.decode(outcome.body) for k in nulls)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("required", ["eventId", "sessionId"])
def test_common_required_fields(kind: str, required: str) -> None:
    value = body(kind)
    del value[required]
    outcome = decode(value)
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, required)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_each_type_specific_required_field(kind: str) -> None:
    for required in MINIMAL[kind]:
        value = body(kind)
        del value[required]
        outcome = decode(value)
        assert isinstance(outcome, Rejection), (kind, required)
        assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, required)


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("session.started", "sessionType", "wedding"),
        ("session.started", "status", "paused"),  # a session starts in setup or rolling
        ("session.started", "status", "complete"),
        ("session.updated", "status", "done"),
        ("session.updated", "directorMode", "auto"),
        ("session.updated", "musicMode", "live"),
        ("session.completed", "status", "rolling"),
        ("director.event", "eventType", "jump_cut"),
        ("camera.upserted", "role", ""),  # open enums: any non-empty string
        ("camera.upserted", "sourceType", ""),
        ("asset.created", "assetType", ""),
        ("music.moment", "section", ""),
    ],
)
def test_enumerations(kind: str, field: str, bad: str) -> None:
    outcome = decode(body(kind, **{field: bad}))
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, field)


def test_open_enumerations_accept_new_values() -> None:
    outcome = decode(body("camera.upserted", role="overhead_drone", sourceType="red_komodo"))
    assert isinstance(outcome, Decoded)


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("camera.upserted", "priorityWeight", "high"),
        ("camera.upserted", "isActive", "yes"),
        ("camera.upserted", "isActive", 1),
        ("director.event", "timestampMs", 1.5),
        ("director.event", "timestampMs", "1"),
        ("director.event", "timestampMs", -1),
        ("director.event", "timestampMs", 10**19),
        ("director.event", "score", "0.5"),
        ("still.created", "score", None),
        ("session.started", "title", 5),
        ("session.started", "startedAt", "yesterday"),
        ("music.moment", "tempo", [120]),
        ("asset.created", "path", None),
    ],
)
def test_mistyped_fields(kind: str, field: str, bad: Any) -> None:
    outcome = decode(body(kind, **{field: bad}))
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, field)


@pytest.mark.parametrize(
    "bad_id", ["", "has space", "dot.ted", "slash/y", "a" * 129, "tab\t", "new\n", "ünï", "*", ">"]
)
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("session.started", "sessionId"),
        ("camera.upserted", "cameraId"),
        ("still.created", "stillCandidateId"),
        ("asset.created", "assetId"),
        ("director.event", "eventId"),
    ],
)
def test_entity_ids_are_subject_safe(kind: str, field: str, bad_id: str) -> None:
    outcome = decode(body(kind, **{field: bad_id}))
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, field)


def test_longest_id_is_accepted() -> None:
    assert isinstance(decode(body("session.started", sessionId="a-_Z9" * 25 + "abc")), Decoded)


def test_unknown_fields_are_refused_not_dropped() -> None:
    outcome = decode(body("director.event", camera_id="c1"))
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (Reason.INVALID_EVENT, "camera_id")


def test_canonical_body_is_camel_case_and_sorted() -> None:
    outcome = decode(body("camera.upserted", metadata={"z": 1, "a": 2}))
    assert isinstance(outcome, Decoded)
    text = outcome.body.decode()
    assert text.startswith('{"cameraId":"cam-1","eventId":"evt-1","isActive":true')
    assert '"metadata":{"a":2,"z":1}' in text
    assert '"type":"camera.upserted"' in text


def test_json_schema_covers_every_event() -> None:
    schema = E.json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {})
    }
    assert tags == set(E.EVENT_TYPE_BY_TAG)
    started = schema["$defs"]["SessionStarted"]
    assert set(started["required"]) >= {"type", "eventId", "sessionId", "sessionType"}
    assert set(started["properties"]["status"]["anyOf"][0]["enum"]) == {"setup", "rolling"}


def test_subject_for() -> None:
    outcome = decode(body("still.created"))
    assert isinstance(outcome, Decoded)
    assert E.subject_for("production", outcome.event) == "production.still.S_1"
