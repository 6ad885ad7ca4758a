"""What the derived reads answer, as Structs: the one definition of their JSON (camelCase,
nulls present), the OpenAPI schema of the routes, and the shape the tests decode into."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .derived import AlignmentItem, Segment, Still, Window, median_abs_offset, stills_in


class _Answer(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    pass


class CutSegment(_Answer, frozen=True):
    camera_id: str
    start_ms: int
    end_ms: int | None  # null: still on air
    held: bool
    start_event_id: str


class CutLog(_Answer, frozen=True):
    segments: list[CutSegment]
    on_air_ms: dict[str, int]  # cameraId -> ms on air in the segments above that have an end


class HeroWindow(_Answer, frozen=True):
    start_ms: int
    end_ms: int
    markers: list[str]  # eventIds by (timestampMs, position)
    camera_ids: list[str]
    stills: list[str]  # stillCandidateIds, best first


class Alignment(_Answer, frozen=True):
    items: list[AlignmentItem]
    median_abs_offset_ms: float | None


def cut_log_answer(segments: Iterable[Segment], on_air: dict[str, int]) -> CutLog:
    out = []
    for s in segments:
        assert s.start_ms is not None, "a segment begun before the builder started"
        assert s.start_event_id is not None
        out.append(
            CutSegment(
                camera_id=s.camera_id,
                start_ms=s.start_ms,
                end_ms=s.end_ms,
                held=s.held,
                start_event_id=s.start_event_id,
            )
        )
    return CutLog(segments=out, on_air_ms=on_air)


def hero_window_answer(window: Window, stills: list[str]) -> HeroWindow:
    return HeroWindow(
        start_ms=window.start_ms,
        end_ms=window.end_ms,
        markers=[m.event_id for m in window.markers],
        camera_ids=window.camera_ids,
        stills=stills,
    )


def hero_windows_answer(windows: Iterable[Window], stills: Iterable[Still]) -> list[HeroWindow]:
    """The twin's way: every still of the session at hand."""
    pool = list(stills)
    return [hero_window_answer(w, stills_in(pool, w)) for w in windows]


def alignment_answer(items: Iterable[AlignmentItem]) -> Alignment:
    aligned = list(items)
    return Alignment(items=aligned, median_abs_offset_ms=median_abs_offset(aligned))
