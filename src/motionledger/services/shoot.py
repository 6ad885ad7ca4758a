"""A realistic shoot, generated: the events a multicam server, pose logic, a music path and
post workers would publish, in time order. Pure and deterministic for a plan and a seed.

Each session is a small discrete-event simulation: a heap of things due at a shoot-clock
offset (the next director decision, the next beat, the next hero pose, a still to
favourite later, ...). Events come out lazily, so a million-event shoot costs memory for
the handful of things scheduled ahead, not for the million.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from ..domain.events import (
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    DirectorEventType,
    Event,
    MusicMoment,
    SessionCompleted,
    SessionStarted,
    SessionType,
    SessionUpdated,
    StillCreated,
    StillUpdated,
)

ROLES: Final = ("hero", "left_profile", "right_profile", "detail", "wide", "context")
SOURCES: Final = ("iphone", "insta360_x4", "virtual_camera")
SECTIONS: Final = ("intro", "build", "drop", "release")
POSES: Final = ("arms_up", "turn", "jump_apex", "lean", "look_back", "stillness")
BEATS_PER_BAR: Final = 4
BARS_PER_PHRASE: Final = 8


@dataclass(frozen=True, slots=True)
class ShootPlan:
    """What to simulate. `rate` is director decisions per second per session."""

    start_ms: int
    seed: int = 0
    sessions: int = 1
    cameras: int = 8
    duration_s: float = 60.0
    rate: float = 30.0
    tempo: float = 120.0
    hero_pose_every_s: float = 4.0
    hold_every_s: float = 8.0
    late_cut_every_s: float = 20.0
    camera_change_every_s: float = 15.0
    favourite_share: float = 0.25
    session_stagger_ms: int = 250


Timed = tuple[int, Event]  # (offset from the shoot's start in ms, event)


def seeded_uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 for epoch-ms `ms` whose other 74 bits come from `rng`: reproducible ids."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _Session:
    """One session's processes, interleaved by a heap of due times."""

    def __init__(self, plan: ShootPlan, index: int) -> None:
        self.plan = plan
        # a seeded, reproducible simulation, not a secret
        self.rng = random.Random(f"motionledger-shoot:{plan.seed}:{plan.start_ms}:{index}")  # noqa: S311
        self.offset = index * plan.session_stagger_ms
        self.id = f"shoot-{self.rng.getrandbits(32):08x}-{index + 1:02d}"
        self.end = self.offset + int(plan.duration_s * 1000)
        self.cameras = [f"cam{n + 1}" for n in range(max(1, plan.cameras))]
        self.weights = [
            1.0 if n == 0 else round(self.rng.uniform(0.2, 0.9), 2)
            for n in range(len(self.cameras))
        ]
        self.active = [True] * len(self.cameras)
        self.tempo = plan.tempo
        self.beat = 0
        self.beat_at = self.offset  # when the latest beat fell
        # the director: what is on air, until when a hold lasts, when the next switch is due
        self.on_air: str | None = None
        self.held_until: int | None = None
        self.switch_at = 0
        self.hold_at = self.offset + self._exp(plan.hold_every_s)
        self.late_at = self.offset + self._exp(plan.late_cut_every_s)
        self.favourites: list[str] = []
        self.stills = 0
        self._heap: list[tuple[int, int, Callable[[int], Iterator[Event]]]] = []
        self._order = itertools.count()

    # -- plumbing ---------------------------------------------------------------------
    def at(self, t: int, step: Callable[[int], Iterator[Event]]) -> None:
        if t < self.end:
            heapq.heappush(self._heap, (t, next(self._order), step))

    def new_id(self, t: int) -> str:
        return seeded_uuid7(self.plan.start_ms + t, self.rng)

    def ms(self, t: int) -> int:
        return self.plan.start_ms + t

    def pick_camera(self, instead_of: str | None = None) -> str:
        # cam1 is never switched off, so there is always a live camera to pick
        live = [n for n, active in enumerate(self.active) if active]
        if len(live) > 1:
            live = [n for n in live if self.cameras[n] != instead_of]
        choice: int = self.rng.choices(live, [self.weights[n] for n in live])[0]
        return self.cameras[choice]

    def run(self) -> Iterator[Timed]:
        yield from self._begin(self.offset)
        self.at(self.offset + 200, self._decision)
        self.at(self.offset + 200, self._beat)
        self.at(self.offset + self._exp(self.plan.hero_pose_every_s), self._hero_pose)
        self.at(self.offset + self._exp(self.plan.camera_change_every_s), self._camera_change)
        while self._heap:
            t, _, step = heapq.heappop(self._heap)
            for event in step(t):
                yield t, event
        yield from self._finish(self.end)

    def _exp(self, mean_s: float) -> int:
        return max(1, int(self.rng.expovariate(1.0 / mean_s) * 1000)) if mean_s > 0 else 1 << 62

    # -- the processes ------------------------------------------------------------------
    def _begin(self, t: int) -> Iterator[Timed]:
        kind: SessionType = "music_demo" if self.rng.random() < 0.2 else "photoshoot_performance"
        yield (
            t,
            SessionStarted(
                event_id=self.new_id(t),
                session_id=self.id,
                session_type=kind,
                status="setup",
                title=f"Simulated shoot {self.id}",
                director_mode="motion",
                music_mode="live_sketch",
                project_slug=f"sim-{self.plan.seed}",
                started_at=self.ms(t),
                metadata={"simulated": True, "seed": self.plan.seed},
            ),
        )
        for n, camera in enumerate(self.cameras):
            yield (
                t + 5 * (n + 1),
                CameraUpserted(
                    event_id=self.new_id(t),
                    session_id=self.id,
                    camera_id=camera,
                    device_name=f"{SOURCES[n % len(SOURCES)]}-{n + 1}",
                    source_type=SOURCES[n % len(SOURCES)],
                    role=ROLES[n % len(ROLES)],
                    priority_weight=self.weights[n],
                    is_active=True,
                    is_wide_fallback=ROLES[n % len(ROLES)] == "wide",
                    position_hint=f"{(360 * n) // len(self.cameras)}deg",
                ),
            )
        t += 5 * (len(self.cameras) + 1)
        yield t, SessionUpdated(event_id=self.new_id(t), session_id=self.id, status="rolling")

    def _decision(self, t: int) -> Iterator[Event]:
        """One frame of the multicam server: a cut to the camera on air (frame-rate
        confirmations that change nothing, now and then naming no camera), a switch to
        another camera near a beat, holds re-asserted every frame until released, now and
        then two decisions in one millisecond, and a cut from a camera's queue that arrives
        late, with an earlier timestamp."""
        if self.held_until is not None:
            if t >= self.held_until:
                self.held_until = None
                yield self._switch(t, "release", self.on_air, "hold_done")
            else:
                yield self._switch(t, "hold", self.on_air, "stable_motion")
        elif self.on_air is None or t >= self.switch_at:
            self.on_air = self.pick_camera(self.on_air)
            yield self._switch(t, "cut", self.on_air, "motion_peak")
            if self.rng.random() < 0.1:  # changed its mind within the frame
                other = self.pick_camera(self.on_air)
                yield self._switch(t, "cut", other, "motion_peak")
                if self.rng.random() < 0.5:
                    self.on_air = other
                else:
                    yield self._switch(t, "cut", self.on_air, "correction")
            self.switch_at = self._next_switch(t)
        elif t >= self.hold_at:
            self.held_until = t + self.rng.randint(800, 3500)
            self.hold_at = t + self._exp(self.plan.hold_every_s)
            yield self._switch(t, "hold", self.on_air, "pose_hold")
            if self.rng.random() < 0.1:  # and a confirming cut in the same millisecond
                yield self._switch(t, "cut", self.on_air, "stable_motion")
        else:
            camera = None if self.rng.random() < 0.01 else self.on_air
            yield self._switch(t, "cut", camera, "stable_motion")
        if t >= self.late_at:
            self.late_at = t + self._exp(self.plan.late_cut_every_s)
            yield self._switch(t - self.rng.randint(40, 400), "cut", self.pick_camera(), "late")
        gap = 1000.0 / self.plan.rate if self.plan.rate > 0 else 1e9
        self.at(t + max(1, int(self.rng.uniform(0.7, 1.3) * gap)), self._decision)

    def _switch(self, t: int, kind: DirectorEventType, camera: str | None, why: str) -> Event:
        return DirectorEvent(
            event_id=self.new_id(t),
            session_id=self.id,
            timestamp_ms=self.ms(max(t, 0)),
            event_type=kind,
            camera_id=camera,
            reason=why,
            score=round(self.rng.random(), 3),
        )

    def _next_switch(self, t: int) -> int:
        """A few beats on, give or take a frame: an AI director cuts on the music."""
        beat_ms = 60_000 / self.tempo
        beats = self.rng.randint(3, 12) + int((t - self.beat_at) / beat_ms)
        return self.beat_at + int(beats * beat_ms) + self.rng.randint(-25, 25)

    def _beat(self, t: int) -> Iterator[Event]:
        beat_in_bar = self.beat % BEATS_PER_BAR
        bar = self.beat // BEATS_PER_BAR
        phrase = bar // BARS_PER_PHRASE
        section = SECTIONS[phrase % len(SECTIONS)]
        if beat_in_bar == 0:
            if bar % BARS_PER_PHRASE == 0:
                if bar > 0:
                    yield self._music_marker(t, "music_phrase_end", section)
                yield self._music_marker(t, "music_phrase_start", section)
                if phrase > 0 and self.rng.random() < 0.5:
                    self.tempo = round(self.tempo + self.rng.uniform(-2.0, 2.0), 2)
                    yield self._music_marker(t, "tempo_update", section)
            yield self._music_marker(t, "bar_fire", section)
        energy = {"intro": 0.3, "build": 0.6, "drop": 0.95, "release": 0.45}[section]
        yield MusicMoment(
            event_id=self.new_id(t),
            session_id=self.id,
            timestamp_ms=self.ms(t),
            section=section,
            tempo=self.tempo,
            confidence=round(self.rng.uniform(0.7, 1.0), 3),
            phase=beat_in_bar / BEATS_PER_BAR,
            energy=round(min(1.0, energy + self.rng.uniform(-0.1, 0.1)), 3),
            motion_signature=f"sig-{self.rng.getrandbits(16):04x}",
        )
        self.beat += 1
        self.beat_at = t
        self.at(t + int(60_000 / self.tempo), self._beat)

    def _music_marker(self, t: int, kind: DirectorEventType, section: str) -> DirectorEvent:
        return DirectorEvent(
            event_id=self.new_id(t),
            session_id=self.id,
            timestamp_ms=self.ms(t),
            event_type=kind,
            reason=section,
            metadata={"tempo": self.tempo, "beat": self.beat},
        )

    def _hero_pose(self, t: int) -> Iterator[Event]:
        camera = self.pick_camera()
        marker = DirectorEvent(
            event_id=self.new_id(t),
            session_id=self.id,
            timestamp_ms=self.ms(t),
            event_type="hero_pose_marker",
            camera_id=camera,
            reason=self.rng.choice(POSES),
            score=round(self.rng.uniform(0.6, 1.0), 3),
        )
        yield marker
        # stills around the pose: the frames after it, and now and then one from the buffer
        # of frames just before it (made a moment later, with an earlier timestamp)
        for n in range(self.rng.randint(1, 3)):
            self.at(t + 80 + 90 * n, self._still(marker, camera))
        if self.rng.random() < 0.4:
            self.at(t + 60, self._still(marker, camera, earlier_ms=self.rng.randint(100, 600)))
        self.at(t + self._exp(self.plan.hero_pose_every_s), self._hero_pose)

    def _still(
        self, marker: DirectorEvent, camera: str, earlier_ms: int = 0
    ) -> Callable[[int], Iterator[Event]]:
        def step(t: int) -> Iterator[Event]:
            self.stills += 1
            still_id = f"{self.id}-still{self.stills:05d}"
            taken = self.ms(max(0, t - earlier_ms))
            yield DirectorEvent(
                event_id=self.new_id(t),
                session_id=self.id,
                timestamp_ms=taken,
                event_type="still_candidate_marker",
                camera_id=camera,
                score=marker.score,
            )
            yield StillCreated(
                event_id=self.new_id(t),
                session_id=self.id,
                still_candidate_id=still_id,
                camera_id=camera,
                timestamp_ms=taken,
                image_path=f"/stills/{self.id}/{still_id}.jpg",
                score=round(self.rng.uniform(0.3, 1.0), 3),
                pose_label=marker.reason,
                source_event_id=marker.event_id,
            )
            if self.rng.random() < self.plan.favourite_share:
                self.at(t + self.rng.randint(2000, 10_000), self._favourite(still_id))

        return step

    def _favourite(self, still_id: str) -> Callable[[int], Iterator[Event]]:
        def step(t: int) -> Iterator[Event]:
            self.favourites.append(still_id)
            yield StillUpdated(
                event_id=self.new_id(t),
                session_id=self.id,
                still_candidate_id=still_id,
                is_favorite=True,
                selected_for_edit=self.rng.random() < 0.4,
            )

        return step

    def _camera_change(self, t: int) -> Iterator[Event]:
        n = self.rng.randrange(len(self.cameras))
        if n > 0 and self.rng.random() < 0.3:
            self.active[n] = not self.active[n]
            if self.cameras[n] == self.on_air:  # switched off while on air: cut away now
                self.switch_at = t
            yield CameraStateChanged(
                event_id=self.new_id(t),
                session_id=self.id,
                camera_id=self.cameras[n],
                is_active=self.active[n],
            )
        else:
            self.weights[n] = round(self.rng.uniform(0.1, 1.0), 2)
            yield CameraStateChanged(
                event_id=self.new_id(t),
                session_id=self.id,
                camera_id=self.cameras[n],
                priority_weight=self.weights[n],
            )
            yield DirectorEvent(
                event_id=self.new_id(t),
                session_id=self.id,
                timestamp_ms=self.ms(t),
                event_type="camera_priority_change",
                camera_id=self.cameras[n],
                score=self.weights[n],
            )
        self.at(t + self._exp(self.plan.camera_change_every_s), self._camera_change)

    def _finish(self, t: int) -> Iterator[Timed]:
        section = SECTIONS[(self.beat // (BEATS_PER_BAR * BARS_PER_PHRASE)) % len(SECTIONS)]
        yield t, self._music_marker(t, "music_phrase_end", section)
        outputs = [
            ("video_master", f"/masters/{self.id}.mov", "multicam"),
            ("contact_sheet", f"/sheets/{self.id}.pdf", "post"),
            ("song_sketch", f"/music/{self.id}.wav", "music"),
        ]
        outputs += [("hero_still", f"/heroes/{still}.tif", "post") for still in self.favourites[:5]]
        for n, (kind, path, source) in enumerate(outputs):
            yield (
                t + n + 1,
                AssetCreated(
                    event_id=self.new_id(t),
                    session_id=self.id,
                    asset_id=f"{self.id}-asset{n + 1:02d}",
                    asset_type=kind,
                    path=path,
                    source=source,
                    status="rendered",
                ),
            )
        t += len(outputs) + 1
        yield t, SessionCompleted(event_id=self.new_id(t), session_id=self.id, status="complete")


def shoot(plan: ShootPlan) -> Iterator[Timed]:
    """Every event of every session, by shoot-clock offset (ties: session, then schedule)."""
    sessions = [_Session(plan, index).run() for index in range(plan.sessions)]
    return heapq.merge(*sessions, key=lambda timed: timed[0])


def session_ids(plan: ShootPlan) -> list[str]:
    return [_Session(plan, index).id for index in range(plan.sessions)]
