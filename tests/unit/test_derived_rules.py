"""The derived reads' rules (domain.derived, through the twin's entry points) against the
independent reference written from the contract's words: random shoots, and hand-checked
cases for every edge the contract names."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from motionledger.domain.derived import (
    CutLogBuilder,
    Marker,
    Shot,
    Still,
    Switch,
    cut_log,
    hero_windows,
)
from motionledger.domain.derived_answers import cut_log_answer, hero_windows_answer
from motionledger.domain.derived_twin import twin_alignment
from motionledger.domain.events import DECODER
from motionledger.domain.reducers import Logged, Twin
from tests.support import derived_reference as ref
from tests.support.projections import BASE_TIME

CAMERAS = st.sampled_from([None, "a", "b", "c"])


@st.composite
def shoots(draw: st.DrawFn, max_size: int = 40) -> list[dict[str, Any]]:
    """Director events with many equal timestamps and positions out of timestamp order."""
    size = draw(st.integers(0, max_size))
    span = draw(st.sampled_from([3, 10, 60]))
    positions = draw(st.permutations(range(1, size + 1)))
    kinds = st.sampled_from(
        [
            "cut",
            "cut",
            "cut",
            "hold",
            "release",
            "bar_fire",
            "hero_pose_marker",
            "still_candidate_marker",
            "music_phrase_start",
            "music_phrase_end",
        ]
    )
    return [
        {
            "eventId": f"e{p}",
            "position": p,
            "timestampMs": draw(st.integers(0, span)),
            "eventType": draw(kinds),
            "cameraId": draw(CAMERAS),
        }
        for p in positions
    ]


def switches(events: list[dict[str, Any]]) -> list[Switch]:
    return [
        Switch(e["timestampMs"], e["position"], e["eventType"], e["cameraId"], e["eventId"])
        for e in events
        if e["eventType"] in ("cut", "hold", "release")
    ]


def rules_cut_log(events: list[dict[str, Any]], low: int, high: int, limit: int) -> Any:
    answer = cut_log_answer(*cut_log(switches(events), low, high, limit))
    return msgspec.to_builtins(answer)


def ev(ts: int, kind: str = "cut", camera: str | None = None, pos: int | None = None) -> dict:
    ev.n = getattr(ev, "n", 0) + 1  # type: ignore[attr-defined]
    p = pos if pos is not None else ev.n  # type: ignore[attr-defined]
    return {
        "eventId": f"{kind}-{camera}-{ts}-{p}",
        "position": p,
        "timestampMs": ts,
        "eventType": kind,
        "cameraId": camera,
    }


# -- cut-log --------------------------------------------------------------------------------
@given(shoots(), st.integers(0, 70), st.integers(0, 70), st.integers(1, 6))
def test_cut_log_is_the_reference(events: list[dict], a: int, b: int, limit: int) -> None:
    low, high = min(a, b), max(a, b)
    assert rules_cut_log(events, low, high, limit) == ref.cut_log(events, low, high, limit)
    assert rules_cut_log(events, 0, 1 << 40, 10**6) == ref.cut_log(events, 0, 1 << 40, 10**6)


@given(shoots())
def test_events_that_change_nothing_can_be_left_out(events: list[dict]) -> None:
    """What the Postgres walks rely on: only cuts to another camera than the previous cut's,
    and holds after releases (and back), change anything."""
    ordered = sorted(switches(events), key=lambda e: (e.timestamp_ms, e.position))
    changing, camera, kind = [], None, "release"
    for e in ordered:
        if e.event_type == "cut" and e.camera_id is not None and e.camera_id != camera:
            camera = e.camera_id
            changing.append(e)
        elif e.event_type in ("hold", "release") and e.event_type != kind:
            kind = e.event_type
            changing.append(e)
    whole = CutLogBuilder().feed_all(ordered).segments()
    assert CutLogBuilder().feed_all(changing).segments() == whole


@given(shoots(), st.data())
def test_a_builder_started_midway_gives_the_same_segments_after_that_time(
    events: list[dict], data: st.DataObject
) -> None:
    """What the Postgres start relies on: started after any event with the shot on air
    there, the builder gives every segment that begins at a later timestamp exactly."""
    ordered = sorted(switches(events), key=lambda e: (e.timestamp_ms, e.position))
    cut = data.draw(st.integers(0, len(ordered)))
    shot = Shot()
    for e in ordered[:cut]:
        shot = shot.after(e)
    split = ordered[cut - 1].timestamp_ms if cut else -1
    whole = CutLogBuilder().feed_all(ordered).segments()
    later = CutLogBuilder(shot).feed_all(ordered[cut:]).segments()
    assert [s for s in later if s.start_ms is not None and s.start_ms > split] == [
        s for s in whole if s.start_ms is not None and s.start_ms > split
    ]


def test_zero_length_segments_are_dropped_then_neighbours_merged() -> None:
    events = [ev(0, camera="A"), ev(10, camera="B"), ev(10, camera="C"), ev(20, camera="B")]
    events += [ev(20, camera="A"), ev(30, "hold"), ev(30, "release")]
    answer = rules_cut_log(events, 0, 100, 10)
    assert answer == ref.cut_log(events, 0, 100, 10)
    # B@10 lasted 0 ms, C ran 10..20, B@20 lasted 0 ms, A again from 20; hold/release at 30
    # cancel out (a zero-length held A), so A from 20 stays one segment
    assert [(s["cameraId"], s["startMs"], s["endMs"]) for s in answer["segments"]] == [
        ("A", 0, 10),
        ("C", 10, 20),
        ("A", 20, None),
    ]
    assert answer["onAirMs"] == {"A": 10, "C": 10}


def test_same_timestamp_reversal_keeps_the_first_segment_and_its_event() -> None:
    first = ev(10, camera="A")
    events = [first, ev(20, camera="B"), ev(20, camera="A")]
    answer = rules_cut_log(events, 0, 100, 10)
    assert answer == ref.cut_log(events, 0, 100, 10)
    assert answer["segments"] == [
        {
            "cameraId": "A",
            "startMs": 10,
            "endMs": None,
            "held": False,
            "startEventId": first["eventId"],
        }
    ]


def test_hold_before_any_cut_and_cuts_without_a_camera() -> None:
    hold, cut = ev(5, "hold"), ev(8, camera="A")
    events = [ev(1, camera=None), hold, ev(6, camera=None), cut, ev(9, camera=None)]
    events.append(ev(12, "release"))
    answer = rules_cut_log(events, 0, 100, 10)
    assert answer == ref.cut_log(events, 0, 100, 10)
    assert [
        (s["startMs"], s["endMs"], s["held"], s["startEventId"]) for s in answer["segments"]
    ] == [
        (8, 12, True, cut["eventId"]),
        (12, None, False, events[-1]["eventId"]),
    ]


def test_a_late_cut_changes_the_segment_it_falls_in() -> None:
    events = [ev(0, camera="A", pos=1), ev(100, camera="B", pos=2), ev(50, camera="C", pos=3)]
    answer = rules_cut_log(events, 0, 1000, 10)
    assert answer == ref.cut_log(events, 0, 1000, 10)
    assert [(s["cameraId"], s["startMs"]) for s in answer["segments"]] == [
        ("A", 0),
        ("C", 50),
        ("B", 100),
    ]


def test_window_boundaries() -> None:
    events = [ev(0, camera="A"), ev(10, camera="B"), ev(20, camera="C")]
    starts = lambda low, high: [  # noqa: E731
        s["startMs"] for s in rules_cut_log(events, low, high, 10)["segments"]
    ]
    assert starts(10, 10) == [10]  # [0,10) ends at fromMs: out; [10,20) starts at toMs: in
    assert starts(9, 10) == [0, 10]
    assert starts(10, 19) == [10]
    assert starts(20, 20) == [20]  # the open one
    assert starts(0, 100) == [0, 10, 20]
    assert [s["startMs"] for s in rules_cut_log(events, 0, 100, 2)["segments"]] == [0, 10]
    for low, high in [(10, 10), (9, 10), (20, 20), (0, 0), (5, 25)]:
        assert rules_cut_log(events, low, high, 10) == ref.cut_log(events, low, high, 10)


# -- hero-windows ---------------------------------------------------------------------------
@given(
    shoots(),
    st.lists(st.tuples(st.integers(0, 70), st.sampled_from([0.1, 0.5, 0.9])), max_size=8),
    st.integers(0, 20),
    st.integers(1, 5),
    st.integers(0, 90),
    st.integers(0, 90),
)
def test_hero_windows_are_the_reference(
    events: list[dict], raw_stills: list, pad: int, limit: int, a: int, b: int
) -> None:
    stills = [
        {"stillCandidateId": f"s{i}", "position": 100 + i, "timestampMs": t, "score": score}
        for i, (t, score) in enumerate(raw_stills)
    ]
    low, high = min(a, b), max(a, b)
    markers = [
        Marker(e["timestampMs"], e["position"], e["eventId"], e["cameraId"])
        for e in events
        if e["eventType"] == "hero_pose_marker"
    ]
    pool = [
        Still(s["stillCandidateId"], s["timestampMs"], s["score"], s["position"]) for s in stills
    ]
    for window in ((low, high), (0, 1 << 40)):
        got = hero_windows_answer(hero_windows(markers, pad, limit, *window), pool)
        assert msgspec.to_builtins(got) == ref.hero_windows(events, stills, pad, limit, *window)


def test_hero_windows_merge_at_touching_ends_and_sort_stills() -> None:
    events = [ev(100, "hero_pose_marker", "c2"), ev(103, "hero_pose_marker", "c1")]
    events += [ev(110, "hero_pose_marker", None), ev(103, "hero_pose_marker", "c2")]
    stills = [
        {"stillCandidateId": "low", "position": 1, "timestampMs": 98, "score": 0.2},
        {"stillCandidateId": "tie-late", "position": 3, "timestampMs": 105, "score": 0.9},
        {"stillCandidateId": "tie-early", "position": 2, "timestampMs": 99, "score": 0.9},
        {"stillCandidateId": "outside", "position": 4, "timestampMs": 97, "score": 1.0},
    ]
    expected = ref.hero_windows(events, stills, 2, 10)
    # 100±2 and 103±2 touch at 101..102? [98,102] and [101,105] overlap; [108,112] does not
    assert [(w["startMs"], w["endMs"]) for w in expected] == [(98, 105), (108, 112)]
    assert expected[0]["cameraIds"] == ["c1", "c2"]
    assert expected[0]["stills"] == ["tie-early", "tie-late", "low"]
    markers = [Marker(e["timestampMs"], e["position"], e["eventId"], e["cameraId"]) for e in events]
    pool = [
        Still(s["stillCandidateId"], s["timestampMs"], s["score"], s["position"]) for s in stills
    ]
    got = msgspec.to_builtins(hero_windows_answer(hero_windows(markers, 2, 10, 0, 1000), pool))
    assert got == expected
    # a window starting exactly at the previous end joins it
    touching = [ev(100, "hero_pose_marker"), ev(104, "hero_pose_marker")]
    assert len(ref.hero_windows(touching, [], 2, 10)) == 1
    markers = [Marker(e["timestampMs"], e["position"], e["eventId"], None) for e in touching]
    assert len(hero_windows(markers, 2, 10, 0, 1000)) == 1


# -- alignment ------------------------------------------------------------------------------
def rules_alignment(
    events: list[dict], moments: list[dict], low: int, high: int, limit: int
) -> Any:
    """Through the twin: the events and moments logged in their positions' order."""
    logged = [(e["position"], ev_json(e)) for e in events] + [
        (
            m["position"],
            {
                "type": "music.moment",
                "eventId": f"m{m['position']}",
                "sessionId": "S",
                "timestampMs": m["timestampMs"],
                "section": m["section"],
                "tempo": m["tempo"],
            },
        )
        for m in moments
    ]
    twin = Twin().feed(
        Logged(n, BASE_TIME, DECODER.decode(msgspec.json.encode(body)))
        for n, (_, body) in enumerate(sorted(logged, key=lambda item: item[0]), start=1)
    )
    return msgspec.to_builtins(twin_alignment(twin, "S", low, high, limit))


def ev_json(e: dict[str, Any]) -> dict[str, Any]:
    body = {
        "type": "director.event",
        "eventId": e["eventId"],
        "sessionId": "S",
        "timestampMs": e["timestampMs"],
        "eventType": e["eventType"],
    }
    return body if e["cameraId"] is None else {**body, "cameraId": e["cameraId"]}


@given(
    shoots(),
    st.lists(
        st.tuples(
            st.integers(0, 70),
            st.sampled_from([None, "intro", "drop"]),
            st.sampled_from([None, 120.0]),
        ),
        max_size=6,
    ),
    st.integers(0, 70),
    st.integers(0, 70),
    st.integers(1, 8),
)
def test_alignment_is_the_reference(
    events: list[dict], raw: list, a: int, b: int, limit: int
) -> None:
    moments = [
        {"position": 200 + i, "timestampMs": t, "section": s, "tempo": tempo}
        for i, (t, s, tempo) in enumerate(raw)
    ]
    low, high = min(a, b), max(a, b)
    assert rules_alignment(events, moments, low, high, limit) == ref.alignment(
        events, moments, low, high, limit
    )


def test_alignment_ties_phrases_and_medians() -> None:
    bars = [ev(t, "bar_fire") for t in (100, 200)]
    phrase = [
        ev(90, "music_phrase_start"),
        ev(140, "music_phrase_end"),
        ev(160, "music_phrase_start"),
    ]
    cuts = [ev(150, camera="a"), ev(130, camera="b"), ev(210, "hero_pose_marker", "a")]
    moments = [
        {"position": 900, "timestampMs": 130, "section": "drop", "tempo": 121.0},
        {"position": 901, "timestampMs": 130, "section": "build", "tempo": None},
    ]
    events = bars + phrase + cuts
    got = rules_alignment(events, moments, 0, 1000, 10)
    assert got == ref.alignment(events, moments, 0, 1000, 10)
    items = {i["timestampMs"]: i for i in got["items"]}
    assert items[150]["nearestBarMs"] == 100  # 50 either way: the earlier
    assert items[150]["offsetMs"] == 50
    # the phrase started at 90 ended at 140, before 150: not in a phrase
    assert (items[150]["phraseStartMs"], items[150]["phraseEndMs"]) == (None, None)
    assert (items[130]["phraseStartMs"], items[130]["phraseEndMs"]) == (90, 140)
    # 210 is after the start at 160, which has no end: in the phrase, open
    assert (items[210]["phraseStartMs"], items[210]["phraseEndMs"]) == (160, None)
    # two moments at 130: the later log position wins, its null tempo included
    assert (items[130]["section"], items[130]["tempo"]) == ("build", None)
    assert (items[150]["section"], items[150]["tempo"]) == ("build", None)
    # |offsets| 30, 50, 10: odd count
    assert got["medianAbsOffsetMs"] == 30
    even = rules_alignment(events, moments, 0, 150, 10)  # 30 and 50
    assert even["medianAbsOffsetMs"] == 40
    uneven = rules_alignment([*events, ev(101, camera="c")], moments, 0, 140, 10)  # 1 and 30
    assert uneven["medianAbsOffsetMs"] == 15.5
    assert rules_alignment(cuts, [], 0, 1000, 10)["medianAbsOffsetMs"] is None
