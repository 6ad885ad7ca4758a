"""Random shoots for the derived reads, as plain JSON events an outside producer would
publish: frame-rate cuts that mostly repeat the camera on air, cuts without a camera, holds
and releases, many equal timestamps and late events, hero markers with stills around them,
bar fires, phrases (some never ended), music moments, and patches made later."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.support import events as ev

Event = dict[str, Any]


@dataclass
class Shoot:
    session: str
    early: list[Event] = field(default_factory=list)  # the first phase, in log order
    late: list[Event] = field(default_factory=list)  # the second phase, in log order


def _shuffled(rnd: random.Random, events: list[Event]) -> list[Event]:
    out = list(events)
    rnd.shuffle(out)
    return out


def random_shoot(
    rnd: random.Random, session: str, switches: int = 300, *, sparse: bool = False
) -> Shoot:
    """`sparse`: a camera stays on air for seconds through many confirming cuts (the walks
    jump), else a fast edit of a few milliseconds per shot (they look at batches)."""
    cameras = ["c1", "c2", "c3", "c4"]
    t, on_air = 0, "c1"
    steps = [0, 5, 20, 40, 80] if sparse else [0, 0, 0, 1, 2, 5, 10, 30]
    switch = 0.03 if sparse else 0.25
    director: list[Event] = []
    for _ in range(switches):
        t += rnd.choice(steps)
        at = t if rnd.random() < 0.95 else max(0, t - rnd.randrange(200))  # a late one
        roll = rnd.random()
        if roll < (0.9 if sparse else 0.6):
            change = rnd.random()
            if change < switch:
                on_air = rnd.choice([*cameras, "c5"])  # c5 is never upserted: allowed
            camera = None if change > 0.97 else on_air
            director.append(ev.director(session, at, "cut", cameraId=camera))
        else:
            kind = "hold" if roll < 0.8 else "release"
            director.append(ev.director(session, at, kind, cameraId=rnd.choice([None, on_air])))
    end = t + 100
    for bar in range(0, end, 200):
        jitter = rnd.choice([0, 0, 3, -2])
        director.append(ev.director(session, max(0, bar + jitter), "bar_fire"))
        if bar % 800 == 0 and rnd.random() < 0.8:
            director.append(ev.director(session, bar, "music_phrase_start"))
        if bar % 800 == 600 and rnd.random() < 0.7:
            director.append(ev.director(session, bar + rnd.choice([0, 50]), "music_phrase_end"))
    markers = []
    for _ in range(rnd.randrange(5, 20)):
        at = rnd.randrange(end)
        camera = rnd.choice([None, *cameras])
        markers.append(ev.director(session, at, "hero_pose_marker", cameraId=camera))
        if rnd.random() < 0.3:  # two markers in the same millisecond
            markers.append(ev.director(session, at, "hero_pose_marker", cameraId="c2"))
    stills, patches = [], []
    for n in range(rnd.randrange(5, 25)):
        marker = rnd.choice(markers)
        still = f"{session}-st{n}"
        at = max(0, marker["timestampMs"] + rnd.randrange(-400, 400))
        camera = marker["cameraId"] or "c1"
        stills.append(
            ev.still_created(
                session, still, camera, timestampMs=at, score=rnd.choice([0.25, 0.5, 0.75, 0.5])
            )
        )
        director.append(ev.director(session, at, "still_candidate_marker", cameraId=camera))
        if rnd.random() < 0.4:
            patches.append(ev.still_updated(session, still, score=rnd.random(), isFavorite=True))
    moments = [
        ev.music(
            session,
            rnd.randrange(end),
            section=rnd.choice([None, "intro", "build", "drop"]),
            tempo=rnd.choice([None, 118.0, 120.5]),
        )
        for _ in range(rnd.randrange(5, 40))
    ]
    shoot = Shoot(session)
    head = [ev.session_started(session, status="rolling")]
    head += [ev.camera_upserted(session, c, isActive=True) for c in cameras]
    rest = _shuffled(rnd, director + markers + moments)
    half = len(rest) // 2
    shoot.early = head + _shuffled(rnd, rest[:half] + stills)
    shoot.late = [
        *_shuffled(rnd, rest[half:]),
        ev.camera_state(session, "c2", isActive=False),
        ev.camera_state(session, "c3", role="wide", priorityWeight=0.5),
        ev.session_updated(session, status="paused", title="later"),
        *patches,
    ]
    return shoot
