"""The shoot simulator: deterministic, realistic (the judge accepts every event), and the
`motionledger simulate` command end to end against a running ledger."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import asyncpg
import msgspec

from motionledger.domain.events import (
    DECODER,
    ENCODER,
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    SessionCompleted,
    SessionStarted,
    StillCreated,
    StillUpdated,
)
from motionledger.producer import connect
from motionledger.services.shoot import ShootPlan, session_ids, shoot
from motionledger.services.simulate import play
from motionledger.settings import Settings
from tests.producer.test_delivery import wait_logged
from tests.support.ledger import running_ledger, settings_env

PLAN = ShootPlan(start_ms=1_700_000_000_000, seed=11, sessions=2, cameras=6, duration_s=90)


def test_same_plan_same_shoot_and_another_seed_another() -> None:
    first = [ENCODER.encode(e) for _, e in shoot(PLAN)]
    assert first == [ENCODER.encode(e) for _, e in shoot(PLAN)]
    other = ShootPlan(start_ms=PLAN.start_ms, seed=12, sessions=2, cameras=6, duration_s=90)
    assert [ENCODER.encode(e) for _, e in shoot(other)] != first


def test_a_shoot_is_realistic_and_internally_consistent() -> None:
    timed = list(shoot(PLAN))
    offsets = [t for t, _ in timed]
    assert offsets == sorted(offsets)
    events = [e for _, e in timed]
    for event in events:  # every event passes the ledger's own decoder
        assert DECODER.decode(ENCODER.encode(event)) == event
    assert len({e.event_id for e in events}) == len(events)
    kinds = Counter(e.event_type if isinstance(e, DirectorEvent) else e.type_name for e in events)
    for kind in (
        "cut",
        "hold",
        "release",
        "bar_fire",
        "music_phrase_start",
        "music_phrase_end",
        "hero_pose_marker",
        "still_candidate_marker",
        "camera_priority_change",
        "music.moment",
        "still.created",
        "still.updated",
        "camera.state_changed",
        "asset.created",
        "session.completed",
    ):
        assert kinds[kind] > 0, kind
    # director decisions at the configured rate (30/s per session, give or take jitter)
    decisions = kinds["cut"] + kinds["hold"] + kinds["release"]
    assert 0.8 * 30 * 90 * 2 < decisions < 1.2 * 30 * 90 * 2
    # bar fires at the tempo: 120 bpm, 4 beats a bar → 0.5 bars/s per session
    assert 0.8 * 0.5 * 90 * 2 < kinds["bar_fire"] < 1.2 * 0.5 * 90 * 2
    # references point backwards in time: sessions, cameras, hero markers, stills
    seen: set[str] = set()
    cameras: set[tuple[str, str]] = set()
    stills: set[str] = set()
    for event in events:
        if not isinstance(event, SessionStarted):
            assert event.session_id in seen
        if isinstance(event, CameraUpserted):
            cameras.add((event.session_id, event.camera_id))
        if isinstance(event, CameraStateChanged | DirectorEvent) and event.camera_id:
            assert (event.session_id, event.camera_id) in cameras
        if isinstance(event, StillCreated):
            assert event.source_event_id in seen
            stills.add(event.still_candidate_id)
        if isinstance(event, StillUpdated):
            assert event.still_candidate_id in stills
            assert event.is_favorite
        seen.add(event.event_id)
        seen.add(event.session_id)
    assert isinstance(events[-1], SessionCompleted)
    assert any(isinstance(e, AssetCreated) and e.asset_type == "hero_still" for e in events)
    assert sorted({e.session_id for e in events}) == sorted(session_ids(PLAN))


async def test_played_shoot_is_accepted_whole(settings: Settings, db: asyncpg.Connection) -> None:
    plan = ShootPlan(start_ms=1_700_000_000_000, seed=5, sessions=2, cameras=8, duration_s=30)
    expected = [e.event_id for _, e in shoot(plan)]
    async with running_ledger(settings):
        async with connect(settings.nats_url or "", subject_root=settings.subject_root) as producer:
            summary = await play(producer, plan, speed=0)
        await wait_logged(db, len(expected))
    assert summary.total == summary.acknowledged == len(expected)
    assert summary.failed == 0
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0
    logged = [r[0] for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")]
    assert sorted(logged) == sorted(expected)


async def test_simulate_command(settings: Settings, db: asyncpg.Connection) -> None:
    argv = [sys.executable, "-m", "motionledger", "simulate", "--duration", "5", "--speed", "0"]
    argv += ["--seed", "9", "--start-ms", "1700000000000", "--json", "--quiet"]
    async with running_ledger(settings):
        done = await asyncio.to_thread(
            subprocess.run, argv, env=settings_env(settings), capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
        summary = msgspec.json.decode(done.stdout.splitlines()[-1])
        assert summary["failed"] == 0
        assert summary["total"] == summary["acknowledged"] > 100
        await wait_logged(db, summary["total"])
        # the same seed and start again: the same events, every one a no-op
        again = await asyncio.to_thread(
            subprocess.run, argv, env=settings_env(settings), capture_output=True, timeout=120
        )
        assert msgspec.json.decode(again.stdout.splitlines()[-1])["duplicates"] == summary["total"]
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == summary["total"]
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0
