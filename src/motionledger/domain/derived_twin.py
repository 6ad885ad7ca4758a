"""The derived reads over the in-memory twin: the rules of `domain.derived` fed the whole
(or, for asOf, the early part of the) log. The contract suite holds Postgres to these."""

from __future__ import annotations

from collections.abc import Iterable

from .derived import (
    ALIGNED_TYPES,
    SWITCH_TYPES,
    Marker,
    Moment,
    Still,
    Surrounding,
    Switch,
    align,
    cut_log,
    hero_windows,
)
from .derived_answers import (
    Alignment,
    CutLog,
    HeroWindow,
    alignment_answer,
    cut_log_answer,
    hero_windows_answer,
)
from .projections import DIRECTOR_EVENTS, MUSIC_MOMENTS, SESSIONS, STILL_CANDIDATES
from .reducers import Row, Twin


def _of(twin: Twin, table: str, session_id: str) -> Iterable[Row]:
    return (row for row in twin.tables[table].values() if row["session_id"] == session_id)


def _directed(twin: Twin, session_id: str, types: tuple[str, ...]) -> list[Row]:
    rows = [r for r in _of(twin, DIRECTOR_EVENTS.name, session_id) if r["event_type"] in types]
    return sorted(rows, key=lambda r: (r["timestamp_ms"], r["position"]))


def known(twin: Twin, session_id: str) -> bool:
    return session_id in twin.tables[SESSIONS.name]


def twin_cut_log(twin: Twin, session_id: str, from_ms: int, to_ms: int, limit: int) -> CutLog:
    switches = [
        Switch(r["timestamp_ms"], r["position"], r["event_type"], r["camera_id"], r["event_id"])
        for r in _directed(twin, session_id, SWITCH_TYPES)
    ]
    return cut_log_answer(*cut_log(switches, from_ms, to_ms, limit))


def twin_hero_windows(
    twin: Twin, session_id: str, pad_ms: int, limit: int, from_ms: int, to_ms: int
) -> list[HeroWindow]:
    markers = [
        Marker(r["timestamp_ms"], r["position"], r["event_id"], r["camera_id"])
        for r in _directed(twin, session_id, ("hero_pose_marker",))
    ]
    stills = [
        Still(r["still_candidate_id"], r["timestamp_ms"], r["score"], r["position"])
        for r in _of(twin, STILL_CANDIDATES.name, session_id)
    ]
    return hero_windows_answer(hero_windows(markers, pad_ms, limit, from_ms, to_ms), stills)


def twin_alignment(twin: Twin, session_id: str, from_ms: int, to_ms: int, limit: int) -> Alignment:
    def times(event_type: str) -> list[int]:
        return [r["timestamp_ms"] for r in _directed(twin, session_id, (event_type,))]

    around = Surrounding(
        times("bar_fire"),
        times("music_phrase_start"),
        times("music_phrase_end"),
        [
            Moment(r["timestamp_ms"], r["position"], r["section"], r["tempo"])
            for r in _of(twin, MUSIC_MOMENTS.name, session_id)
        ],
    )
    items = [
        r
        for r in _directed(twin, session_id, ALIGNED_TYPES)
        if from_ms <= r["timestamp_ms"] <= to_ms
    ][:limit]
    return alignment_answer(
        align(
            r["event_id"],
            r["event_type"],
            r["timestamp_ms"],
            r["camera_id"],
            around.of(r["timestamp_ms"]),
        )
        for r in items
    )
