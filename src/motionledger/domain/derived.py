"""The rules of the derived reads (cut-log, hero-windows, alignment), pure and shared.

Each rule is a small core fed in order: the in-memory twin feeds it the whole log, the
Postgres path feeds it a starting state found by index probes and only the events of a
window that can change the answer. Both run this code, so the contract's wording lives here
once; `domain.derived_answers` turns the results into the answers' Structs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, cast

import msgspec

SWITCH_TYPES: Final = ("cut", "hold", "release")
ALIGNED_TYPES: Final = ("cut", "hero_pose_marker", "still_candidate_marker")


# -- cut-log --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Switch:
    """A cut, hold or release director event, as the cut log sees it."""

    timestamp_ms: int
    position: int
    event_type: str
    camera_id: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class Shot:
    """What is on air: the camera (none before the first cut that names one) and held."""

    camera_id: str | None = None
    held: bool = False

    def after(self, event: Switch) -> Shot:
        if event.event_type == "cut":
            return self if event.camera_id is None else replace(self, camera_id=event.camera_id)
        if event.event_type == "hold":
            return replace(self, held=True)
        if event.event_type == "release":
            return replace(self, held=False)
        return self


@dataclass(slots=True)
class Segment:
    camera_id: str
    start_ms: int | None  # None: it began before the builder was started (never answered)
    end_ms: int | None  # None: still open
    held: bool
    start_event_id: str | None

    def same_shot(self, other: Segment) -> bool:
        return self.camera_id == other.camera_id and self.held == other.held


class CutLogBuilder:
    """The cut log's state machine, fed switches in (timestampMs, position) order.

    Started from `Shot()` and fed a whole session it gives the whole cut log. Started from
    the shot on air just after some point and fed every event after it that changes the
    shot (events that change nothing may be left out: they do nothing here), it gives the
    same segments from there on; the segment open at the start has an unknown start.

    Zero-length segments are dropped and equal neighbours merged as segments close, so at
    any moment `kept[:-1]` are final, `kept[-1]` may still grow by a merge with `open`.
    """

    def __init__(self, shot: Shot | None = None) -> None:
        self.shot = shot or Shot()
        self.kept: list[Segment] = []
        self.open: Segment | None = None
        if self.shot.camera_id is not None:
            self.open = Segment(self.shot.camera_id, None, None, self.shot.held, None)

    def feed(self, event: Switch) -> None:
        after = self.shot.after(event)
        if after == self.shot:
            return
        self.shot = after
        if after.camera_id is None:  # a hold or release before any camera: no segment yet
            return
        if self.open is not None:
            self.open.end_ms = event.timestamp_ms
            self._keep(self.open)
        self.open = Segment(after.camera_id, event.timestamp_ms, None, after.held, event.event_id)

    def feed_all(self, events: Iterable[Switch]) -> CutLogBuilder:
        for event in events:
            self.feed(event)
        return self

    def _keep(self, closed: Segment) -> None:
        if closed.start_ms is not None and closed.end_ms == closed.start_ms:
            return  # zero-length
        if self.kept and self.kept[-1].same_shot(closed):
            self.kept[-1].end_ms = closed.end_ms
            return
        self.kept.append(closed)

    def segments(self) -> list[Segment]:
        """Every segment so far, the open one last (merged into its equal predecessor)."""
        out = [replace(s) for s in self.kept]
        if self.open is not None:
            if out and out[-1].same_shot(self.open):
                out[-1].end_ms = None
            else:
                out.append(replace(self.open))
        return out


def overlapping(segments: Iterable[Segment], from_ms: int, to_ms: int) -> list[Segment]:
    """Segments [s, e) with s <= toMs and (e null or e > fromMs), unclipped."""
    return [
        s
        for s in segments
        if s.start_ms is not None
        and s.start_ms <= to_ms
        and (s.end_ms is None or s.end_ms > from_ms)
    ]


def window_settled(
    builder: CutLogBuilder, from_ms: int, to_ms: int, limit: int, complete_to: int
) -> bool:
    """Whether the first `limit` segments overlapping the window are final, given that every
    switch with timestampMs <= `complete_to` has been fed (more may follow after it)."""
    segments = builder.segments()
    if len(overlapping(segments, from_ms, to_ms)) > limit:
        return True  # only the last segment can still change, and it is not among them
    if complete_to < to_ms:
        return False
    last = segments[-1] if segments else None
    return last is None or last.end_ms is not None or (last.start_ms or 0) > to_ms


def on_air_ms(segments: Iterable[Segment]) -> dict[str, int]:
    """Per camera, the summed length of the segments that have an end (by cameraId)."""
    total: dict[str, int] = {}
    for s in segments:
        if s.end_ms is not None and s.start_ms is not None:
            total[s.camera_id] = total.get(s.camera_id, 0) + s.end_ms - s.start_ms
    return dict(sorted(total.items()))


def cut_log(
    switches: Iterable[Switch], from_ms: int, to_ms: int, limit: int
) -> tuple[list[Segment], dict[str, int]]:
    """The whole rule over a session's switches (any order): the twin's way."""
    ordered = sorted(switches, key=lambda e: (e.timestamp_ms, e.position))
    segments = overlapping(CutLogBuilder().feed_all(ordered).segments(), from_ms, to_ms)[:limit]
    return segments, on_air_ms(segments)


# -- hero-windows ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Marker:
    timestamp_ms: int
    position: int
    event_id: str
    camera_id: str | None


@dataclass(slots=True)
class Window:
    start_ms: int
    end_ms: int
    markers: list[Marker]

    @property
    def camera_ids(self) -> list[str]:
        return sorted({m.camera_id for m in self.markers if m.camera_id is not None})

    def overlaps(self, from_ms: int, to_ms: int) -> bool:
        return self.start_ms <= to_ms and self.end_ms >= from_ms


class HeroWindowBuilder:
    """Hero-pose markers, fed in (timestampMs, position) order, padded and merged: a window
    that starts at or before the previous one's end joins it. `closed` windows are final;
    `open` may still grow."""

    def __init__(self, pad_ms: int) -> None:
        self.pad_ms = pad_ms
        self.closed: list[Window] = []
        self.open: Window | None = None

    def feed(self, marker: Marker) -> None:
        start, end = marker.timestamp_ms - self.pad_ms, marker.timestamp_ms + self.pad_ms
        if self.open is not None and start <= self.open.end_ms:
            self.open.end_ms = max(self.open.end_ms, end)
            self.open.markers.append(marker)
            return
        if self.open is not None:
            self.closed.append(self.open)
        self.open = Window(start, end, [marker])

    def windows(self) -> list[Window]:
        return [*self.closed, *([self.open] if self.open is not None else [])]


def chained(earlier: Marker, later: Marker, pad_ms: int) -> bool:
    """Whether two successive markers fall in one window."""
    return later.timestamp_ms - pad_ms <= earlier.timestamp_ms + pad_ms


def hero_windows(
    markers: Iterable[Marker], pad_ms: int, limit: int, from_ms: int, to_ms: int
) -> list[Window]:
    """The whole rule over a session's hero-pose markers (any order): the twin's way."""
    builder = HeroWindowBuilder(pad_ms)
    for marker in sorted(markers, key=lambda m: (m.timestamp_ms, m.position)):
        builder.feed(marker)
    return [w for w in builder.windows() if w.overlaps(from_ms, to_ms)][:limit]


@dataclass(frozen=True, slots=True)
class Still:
    still_candidate_id: str
    timestamp_ms: int
    score: float
    position: int


def stills_in(stills: Iterable[Still], window: Window) -> list[str]:
    """Stills with timestampMs in [startMs, endMs], best first (score desc, time, position)."""
    inside = [s for s in stills if window.start_ms <= s.timestamp_ms <= window.end_ms]
    inside.sort(key=lambda s: (-s.score, s.timestamp_ms, s.position))
    return [s.still_candidate_id for s in inside]


# -- alignment ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Surroundings:
    """What an item's alignment depends on, as found by probes or by the twin's bisect:
    bar fires at or before / at or after it; the latest phrase start at or before it and the
    earliest phrase end at or after that start; the latest music moment at or before it."""

    bar_before: int | None
    bar_after: int | None
    phrase_start: int | None
    phrase_end: int | None
    section: str | None
    tempo: float | None


AlignedType = Literal["cut", "hero_pose_marker", "still_candidate_marker"]


class AlignmentItem(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """One item of an alignment answer, as the rule makes it and the route shows it."""

    event_id: str
    event_type: AlignedType
    timestamp_ms: int
    camera_id: str | None
    nearest_bar_ms: int | None
    offset_ms: int | None
    phrase_start_ms: int | None
    phrase_end_ms: int | None
    section: str | None
    tempo: float | None


def align(
    event_id: str, event_type: str, timestamp_ms: int, camera_id: str | None, near: Surroundings
) -> AlignmentItem:
    t = timestamp_ms
    bars = [b for b in (near.bar_before, near.bar_after) if b is not None]
    bar = min(bars, key=lambda b: (abs(t - b), b)) if bars else None  # a tie: the earlier
    start, end = near.phrase_start, near.phrase_end
    in_phrase = start is not None and (end is None or end >= t)
    return AlignmentItem(
        event_id=event_id,
        event_type=cast(AlignedType, event_type),
        timestamp_ms=t,
        camera_id=camera_id,
        nearest_bar_ms=bar,
        offset_ms=None if bar is None else t - bar,
        phrase_start_ms=start if in_phrase else None,
        phrase_end_ms=end if in_phrase else None,
        section=near.section,
        tempo=near.tempo,
    )


def median_abs_offset(items: Iterable[AlignmentItem]) -> float | None:
    values = sorted(abs(i.offset_ms) for i in items if i.offset_ms is not None)
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    return (values[middle - 1] + values[middle]) / 2


@dataclass(frozen=True, slots=True)
class Moment:
    timestamp_ms: int
    position: int
    section: str | None
    tempo: float | None


class Surrounding:
    """The twin's way to find an item's surroundings: sorted lists and bisect."""

    def __init__(
        self,
        bars: Iterable[int],
        phrase_starts: Iterable[int],
        phrase_ends: Iterable[int],
        moments: Iterable[Moment],
    ) -> None:
        self.bars = sorted(bars)
        self.starts = sorted(phrase_starts)
        self.ends = sorted(phrase_ends)
        self.moments = sorted(moments, key=lambda m: (m.timestamp_ms, m.position))
        self._moment_times = [m.timestamp_ms for m in self.moments]

    def of(self, t: int) -> Surroundings:
        before = _at_or_before(self.bars, t)
        after = _at_or_after(self.bars, t)
        start = _at_or_before(self.starts, t)
        end = None if start is None else _at_or_after(self.ends, start)
        i = bisect.bisect_right(self._moment_times, t)
        moment = self.moments[i - 1] if i else None
        return Surroundings(
            before,
            after,
            start,
            end,
            None if moment is None else moment.section,
            None if moment is None else moment.tempo,
        )


def _at_or_before(values: Sequence[int], t: int) -> int | None:
    i = bisect.bisect_right(values, t)
    return values[i - 1] if i else None


def _at_or_after(values: Sequence[int], t: int) -> int | None:
    i = bisect.bisect_left(values, t)
    return values[i] if i < len(values) else None
