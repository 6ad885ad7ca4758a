"""Every judging rule, on the pure judge with hand-made knowledge."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from motionledger.domain import events as E
from motionledger.domain.canonical import canonical_json
from motionledger.domain.judge import (
    ACCEPT,
    DUPLICATE,
    FactKeys,
    Knowledge,
    Prior,
    judge,
    judge_and_learn,
)
from motionledger.domain.reasons import STATE_REASONS, Reason, Rejection

_n = 0


def make(kind: str, session: str = "S1", **fields: Any) -> E.AnyEvent:
    global _n
    _n += 1
    value = {
        "type": kind,
        "eventId": fields.pop("eventId", f"e{_n}"),
        "sessionId": session,
        **fields,
    }
    return msgspec.convert(value, E.AnyEvent)  # type: ignore[arg-type]


def started(session: str = "S1", **f: Any) -> E.AnyEvent:
    return make("session.started", session, sessionType="music_demo", **f)


def camera(session: str = "S1", cam: str = "c1") -> E.AnyEvent:
    return make(
        "camera.upserted",
        session,
        cameraId=cam,
        sourceType="iphone",
        role="hero",
        priorityWeight=1.0,
        isActive=True,
    )


def still(session: str = "S1", sid: str = "st1") -> E.AnyEvent:
    return make(
        "still.created", session, stillCandidateId=sid, cameraId="c1", timestampMs=1, score=0.5
    )


def reason(verdict: object) -> Reason:
    assert isinstance(verdict, Rejection), verdict
    return verdict.reason


def test_a_session_starts_once() -> None:
    known = Knowledge()
    assert judge_and_learn(started(), known) is ACCEPT
    assert reason(judge_and_learn(started(), known)) is Reason.SESSION_EXISTS
    assert judge(started("S2"), known) is ACCEPT


@pytest.mark.parametrize(
    "event",
    [
        make("session.updated", "S9", title="t"),
        make("session.completed", "S9"),
        make(
            "camera.upserted",
            "S9",
            cameraId="c",
            sourceType="x",
            role="y",
            priorityWeight=1,
            isActive=True,
        ),
        make("camera.state_changed", "S9", cameraId="c"),
        make("director.event", "S9", timestampMs=1, eventType="cut"),
        make("still.created", "S9", stillCandidateId="s", cameraId="c", timestampMs=1, score=1),
        make("still.updated", "S9", stillCandidateId="s"),
        make("music.moment", "S9", timestampMs=1),
        make("asset.created", "S9", assetId="a", assetType="clip", path="/p"),
    ],
    ids=lambda e: e.type_name,
)
def test_everything_else_needs_a_started_session(event: E.AnyEvent) -> None:
    assert reason(judge(event, Knowledge())) is Reason.UNKNOWN_SESSION


def test_camera_state_needs_the_camera_in_that_session() -> None:
    known = Knowledge(sessions={"S1", "S2"})
    change = make("camera.state_changed", cameraId="c1", isActive=False)
    assert reason(judge(change, known)) is Reason.UNKNOWN_CAMERA
    assert judge_and_learn(camera("S2", "c1"), known) is ACCEPT
    assert reason(judge(change, known)) is Reason.UNKNOWN_CAMERA  # other session's camera
    assert judge_and_learn(camera("S1", "c1"), known) is ACCEPT
    assert judge(change, known) is ACCEPT
    # upserting again is fine: it patches
    assert judge(camera("S1", "c1"), known) is ACCEPT


def test_stills_are_created_once_and_updated_in_their_session() -> None:
    known = Knowledge(sessions={"S1", "S2"})
    update = make("still.updated", stillCandidateId="st1", isFavorite=True)
    assert reason(judge(update, known)) is Reason.UNKNOWN_STILL
    assert judge_and_learn(still(), known) is ACCEPT
    assert judge(update, known) is ACCEPT
    assert reason(judge(still(), known)) is Reason.STILL_EXISTS
    assert reason(judge(still("S2"), known)) is Reason.STILL_EXISTS  # ids are global
    elsewhere = make("still.updated", "S2", stillCandidateId="st1")
    assert reason(judge(elsewhere, known)) is Reason.STILL_SESSION_MISMATCH


def test_assets_are_created_once() -> None:
    known = Knowledge(sessions={"S1"})
    first = make("asset.created", assetId="a1", assetType="clip", path="/a")
    assert judge_and_learn(first, known) is ACCEPT
    again = make("asset.created", assetId="a1", assetType="clip", path="/b")
    assert reason(judge(again, known)) is Reason.ASSET_EXISTS


def test_the_same_event_id_again_is_a_duplicate_before_any_rule() -> None:
    known = Knowledge()
    first = started(eventId="same")
    assert judge_and_learn(first, known) is ACCEPT
    assert judge(first, known) is DUPLICATE  # the session exists now: no rule is asked


def test_the_same_event_id_with_another_body_is_a_conflict_never_a_second_row() -> None:
    known = Knowledge()
    assert judge_and_learn(started(eventId="same"), known) is ACCEPT
    other = make("director.event", timestampMs=1, eventType="cut", eventId="same")
    verdict = judge(other, known)
    assert reason(verdict) is Reason.EVENT_ID_REUSED
    assert isinstance(verdict, Rejection)
    assert verdict.field == "eventId"


def test_an_event_id_is_judged_once_a_rejection_holds_when_the_state_moves() -> None:
    known = Knowledge()
    cut = make("director.event", timestampMs=1, eventType="cut", eventId="early")
    assert reason(judge_and_learn(cut, known)) is Reason.UNKNOWN_SESSION
    assert judge_and_learn(started(), known) is ACCEPT
    again = judge(cut, known)
    assert reason(again) is Reason.UNKNOWN_SESSION  # the session exists now; no matter
    assert judge(cut, known, replay=True) is ACCEPT  # an operator's replay judges afresh


def test_a_prior_rejection_kept_as_a_dead_letter_is_named() -> None:
    cut = make("director.event", timestampMs=1, eventType="cut")
    first = Rejection(Reason.UNKNOWN_SESSION, "session S1 was never started")
    known = Knowledge(sessions={"S1"})
    known.priors[cut.event_id] = Prior(canonical_json(cut), first, dead_letter_id=41)
    verdict = judge(cut, known)
    assert isinstance(verdict, Rejection)
    assert (verdict.reason, verdict.repeat_of) == (Reason.UNKNOWN_SESSION, 41)
    assert verdict.detail.endswith(first.detail)


def test_rejected_events_teach_no_facts() -> None:
    known = Knowledge()
    orphan_camera = camera("S1", "c1")
    assert reason(judge_and_learn(orphan_camera, known)) is Reason.UNKNOWN_SESSION
    assert known.cameras == set()
    assert known.priors[orphan_camera.event_id].rejection is not None


def test_fact_keys_name_exactly_what_judging_needs() -> None:
    keys = FactKeys()
    for event in (
        started("A"),
        make("camera.state_changed", "B", cameraId="c"),
        make("still.updated", "C", stillCandidateId="s"),
        make("asset.created", "D", assetId="a", assetType="t", path="/p"),
        make("director.event", "E", timestampMs=1, eventType="cut"),
    ):
        keys.add(event)
    assert keys.sessions == {"A", "B", "C", "D", "E"}
    assert keys.cameras == {("B", "c")}
    assert keys.stills == {"s"}
    assert keys.assets == {"a"}


def test_state_reasons_are_exactly_the_state_rules() -> None:
    assert {
        Reason.UNKNOWN_SESSION,
        Reason.SESSION_EXISTS,
        Reason.UNKNOWN_CAMERA,
        Reason.STILL_EXISTS,
        Reason.UNKNOWN_STILL,
        Reason.STILL_SESSION_MISMATCH,
        Reason.ASSET_EXISTS,
        Reason.EVENT_ID_REUSED,
    } == STATE_REASONS
