"""The derived reads' contract suite: random shoots committed to the log in shuffled
timestamp order, in two phases, projected; then each route's answer from Postgres — whole,
windowed (boundaries included), other pads and limits, and as of the time between the
phases — is compared field for field with the independent reference built from the
contract's words and the log's own positions, and with the in-memory twin."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import msgspec
import pytest

from motionledger.adapters.postgres.database import connect, create_pool
from motionledger.adapters.postgres.ledger import EVENT_COLUMNS
from motionledger.adapters.postgres.projections import Applier
from motionledger.domain.derived import on_air_ms, overlapping
from motionledger.domain.derived_answers import cut_log_answer
from motionledger.domain.derived_twin import twin_alignment, twin_cut_log, twin_hero_windows
from motionledger.domain.events import (
    MAX_EPOCH_MS,
    DirectorEvent,
    MusicMoment,
    StillCreated,
    StillUpdated,
)
from motionledger.domain.projections import PROJECTIONS
from motionledger.domain.reducers import Logged, Twin, recorded_ms
from motionledger.errors import NotCaughtUp, NotFound
from motionledger.services.as_of import timeline_as_of
from motionledger.services.derived import Derived, cut_log_in
from motionledger.services.positions import Positions
from motionledger.services.queries import Queries
from motionledger.services.rebuild import rebuild
from motionledger.services.waiters import Waiters
from tests.support import databases
from tests.support import derived_reference as ref
from tests.support import events as ev
from tests.support.derived_shoots import random_shoot
from tests.support.projections import append


async def project(conn: asyncpg.Connection) -> None:
    applier = Applier(PROJECTIONS, batch=97)
    while not (await applier.step(conn)).caught_up:
        pass


def director_of(logged: list[Logged], session: str) -> list[dict[str, Any]]:
    return [
        {
            "eventId": item.event.event_id,
            "position": item.position,
            "timestampMs": item.event.timestamp_ms,
            "eventType": item.event.event_type,
            "cameraId": item.event.camera_id,
        }
        for item in logged
        if isinstance(item.event, DirectorEvent) and item.event.session_id == session
    ]


def stills_of(logged: list[Logged], session: str) -> list[dict[str, Any]]:
    """Each still with the score its latest patch gave it (a null score patches nothing)."""
    stills: dict[str, dict[str, Any]] = {}
    for item in logged:
        event = item.event
        if isinstance(event, StillCreated) and event.session_id == session:
            stills[event.still_candidate_id] = {
                "stillCandidateId": event.still_candidate_id,
                "position": item.position,
                "timestampMs": event.timestamp_ms,
                "score": event.score,
            }
        elif (
            isinstance(event, StillUpdated)
            and event.session_id == session
            and event.score is not None
        ):
            stills[event.still_candidate_id]["score"] = event.score
    return list(stills.values())


def moments_of(logged: list[Logged], session: str) -> list[dict[str, Any]]:
    return [
        {
            "position": item.position,
            "timestampMs": item.event.timestamp_ms,
            "section": item.event.section,
            "tempo": item.event.tempo,
        }
        for item in logged
        if isinstance(item.event, MusicMoment) and item.event.session_id == session
    ]


def windows(rnd: random.Random, director: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Whole, and windows whose ends sit on event timestamps (segment bounds) and between."""
    times = sorted({e["timestampMs"] for e in director})
    out = [(0, MAX_EPOCH_MS), (times[0], times[0]), (times[-1], times[-1])]
    for _ in range(10):
        a, b = rnd.choice(times), rnd.choice(times)
        out.append((min(a, b), max(a, b)))
        out.append((max(0, min(a, b) - 1), max(a, b) + 1))
    out.append((times[-1] + 1, MAX_EPOCH_MS))
    for _ in range(4):  # fromMs after toMs: the overlap rules apply as written
        a, b = rnd.choice(times), rnd.choice(times)
        out.append((max(a, b) + 1, min(a, b)))
    return out


def decoded(answer: tuple[bytes, int]) -> Any:
    return msgspec.json.decode(answer[0])


async def paged(derived: Derived, low: int, high: int, limit: int) -> Any:
    """The cut log the long way (start, then page by page in a snapshot), which the one
    statement of most windows falls back to."""
    async with derived.snapshot() as conn:
        builder = await cut_log_in(conn, "S", (low, high), limit)
    segments = overlapping(builder.segments(), low, high)[:limit]
    return msgspec.to_builtins(cut_log_answer(segments, on_air_ms(segments)))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_derived_reads_are_the_reference(
    pg_admin_url: str, database_url: str, db: asyncpg.Connection, seed: int
) -> None:
    rnd = random.Random(seed)
    shoot = random_shoot(rnd, "S", switches=250 + 100 * seed, sparse=seed % 2 == 0)
    other = random_shoot(rnd, "T", switches=60)  # a neighbour: never in S's answers
    early = await append(db, [*shoot.early, *other.early])
    await project(db)
    late = await append(db, [*shoot.late, *other.late])
    await project(db)
    logged = [*early, *late]
    as_of = recorded_ms(early[-1].recorded_at)
    assert recorded_ms(late[0].recorded_at) > as_of
    director, stills = director_of(logged, "S"), stills_of(logged, "S")
    moments = moments_of(logged, "S")
    twin = Twin().feed(logged)
    pool = await create_pool(database_url, max_size=2)
    try:
        derived = Derived(pool)
        spans = windows(rnd, director)
        for low, high in spans:
            for limit in (1, 2, 7, 10_000):
                want = ref.cut_log(director, low, high, limit)
                got = decoded(await derived.cut_log("S", low, high, limit))
                assert got == want, (low, high, limit)
                assert msgspec.to_builtins(twin_cut_log(twin, "S", low, high, limit)) == want
            for pad, limit in ((0, 100), (37, 2), (300, 1), (1500, 100), (60_000, 3)):
                want = ref.hero_windows(director, stills, pad, limit, low, high)
                got = decoded(await derived.hero_windows("S", pad, limit, low, high))
                assert got == want, (low, high, pad, limit)
                twins = twin_hero_windows(twin, "S", pad, limit, low, high)
                assert msgspec.to_builtins(twins) == want
            for limit in (1, 5, 1000):
                want = ref.alignment(director, moments, low, high, limit)
                got = decoded(await derived.alignment("S", low, high, limit))
                assert got == want, (low, high, limit)
                assert msgspec.to_builtins(twin_alignment(twin, "S", low, high, limit)) == want
        # as of the time between the phases: only the first phase counts
        before = director_of(early, "S")
        for low, high in spans:
            for limit in (1, 3, 10_000):
                want = ref.cut_log(before, low, high, limit)
                body, position = await derived.cut_log("S", low, high, limit, as_of)
                assert msgspec.json.decode(body) == want, (low, high, limit)
                assert position == early[-1].position
        started = recorded_ms(early[0].recorded_at)
        with pytest.raises(NotFound):
            await derived.cut_log("S", 0, MAX_EPOCH_MS, 10, started - 1)
        # the answers before and after a rebuild are the same, and the indexes are back
        whole = [await derived.cut_log("S", *span, 10_000) for span in spans[:4]]
        await rebuild(database_url, [])
        assert [await derived.cut_log("S", *span, 10_000) for span in spans[:4]] == whole
        indexes = await db.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'production'"
            " AND tablename = 'director_events'"
        )
        defs = {r["indexname"]: r["indexdef"] for r in indexes}
        assert "WHERE" in defs["director_events_cut_camera"]
        assert "INCLUDE (camera_id)" in defs["director_events_session_type"]
        assert '("position" >> 14)' in defs["director_events_session_block"]
    finally:
        await pool.close()
    await check_timeline_as_of(pg_admin_url, database_url, early, as_of)


async def check_timeline_as_of(
    pg_admin_url: str, database_url: str, early: list[Logged], as_of: int
) -> None:
    """The timeline asOf on the whole log is the live timeline of a log holding only what
    was recorded by then (the same events at the same positions and times)."""
    then_url = await databases.create_database(pg_admin_url)
    then = await connect(then_url)
    pool = await create_pool(database_url, max_size=2)
    then_pool = await create_pool(then_url, max_size=2)
    try:
        rows = await pool.fetch(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM ledger.events WHERE position <= $1"
            " ORDER BY position",
            early[-1].position,
        )
        await then.copy_records_to_table(
            "events", schema_name="ledger", records=rows, columns=EVENT_COLUMNS
        )
        await project(then)
        derived, queries = Derived(pool), Queries(then_pool)
        for window in ((0, MAX_EPOCH_MS), (100, 900), (0, 0)):
            for limit in (1, 4, 1000):
                body, position = await timeline_as_of(derived, "S", window, limit, as_of)
                live, then_position = await queries.timeline("S", *window, limit)
                assert msgspec.json.decode(body) == msgspec.json.decode(live), (window, limit)
                assert position == early[-1].position == then_position
        with pytest.raises(NotFound):
            await timeline_as_of(derived, "S", (0, MAX_EPOCH_MS), 10, 0)
    finally:
        await pool.close()
        await then_pool.close()
        await then.close()
        await databases.drop_database(pg_admin_url, then_url)


def dense_switches(
    rnd: random.Random, session: str, count: int, span: int, cuts: float
) -> list[dict]:
    """Many switches in few milliseconds: cuts overridden within their own timestamp, holds
    released in the same millisecond, cuts without a camera — every start case of a window.
    `cuts`: the share of cuts (few holds: camera runs decide where segments begin)."""
    out = []
    for _ in range(count):
        roll = rnd.random()
        if roll < cuts:
            camera = rnd.choice(["a", "b", "c", None])
            out.append(ev.director(session, rnd.randrange(span), "cut", cameraId=camera))
        else:
            kind = "hold" if rnd.random() < 0.5 else "release"
            out.append(ev.director(session, rnd.randrange(span), kind))
    return out


@pytest.mark.parametrize("seed", range(8))
async def test_cut_log_windows_from_every_timestamp(
    database_url: str, db: asyncpg.Connection, seed: int
) -> None:
    rnd = random.Random(seed)
    span, cuts = 30, [0.5, 0.95, 0.1, 0.8][seed % 4]
    early = await append(db, [ev.session_started("S"), *dense_switches(rnd, "S", 60, span, cuts)])
    late = await append(db, dense_switches(rnd, "S", 60, span, cuts))
    await project(db)
    as_of = recorded_ms(early[-1].recorded_at)
    everything, before = director_of([*early, *late], "S"), director_of(early, "S")
    pool = await create_pool(database_url, max_size=2)
    try:
        derived = Derived(pool)
        for low in range(-1, span + 2):
            for high in (low, low + 3, MAX_EPOCH_MS):
                for limit in (1, 2, 1000):
                    start = max(0, low)
                    want = ref.cut_log(everything, start, high, limit)
                    got = decoded(await derived.cut_log("S", start, high, limit))
                    assert got == want, (low, high, limit)
                    assert await paged(derived, start, high, limit) == want, ("paged", low)
                    want = ref.cut_log(before, start, high, limit)
                    got = decoded(await derived.cut_log("S", start, high, limit, as_of))
                    assert got == want, ("asOf", low, high, limit)
    finally:
        await pool.close()


def _switches(*spec: tuple[int, str, str | None]) -> list[dict]:
    return [ev.director("S", ts, kind, cameraId=camera) for ts, kind, camera in spec]


# Where the segment on air at fromMs began is found by probing back: the cases where the
# latest other camera (or the latest release/hold) is overridden within its own timestamp.
EDGES = {
    "camera_overridden_back_to_the_first_cut": _switches(
        (3, "cut", "X"), (10, "cut", "Y"), (10, "cut", "X"), (12, "cut", "X"), (20, "cut", "X")
    ),
    "camera_overridden_then_an_earlier_other": _switches(
        (1, "cut", "Z"), (3, "cut", "X"), (10, "cut", "Y"), (10, "cut", "X"), (15, "cut", "X")
    ),
    "camera_overridden_twice": _switches(
        (3, "cut", "X"),
        (10, "cut", "Y"),
        (10, "cut", "X"),
        (12, "cut", "Y"),
        (12, "cut", "X"),
        (14, "cut", None),
        (20, "cut", "X"),
        (22, "cut", "Y"),
    ),
    "held_overridden": _switches(
        (1, "cut", "X"),
        (5, "hold", None),
        (10, "release", None),
        (10, "hold", None),
        (12, "cut", "X"),
        (20, "release", None),
    ),
    "held_overridden_back_to_the_beginning": _switches(
        (1, "cut", "X"),
        (10, "hold", None),
        (10, "release", None),
        (12, "cut", "X"),
        (15, "release", None),
        (18, "hold", None),
    ),
    "held_before_any_camera": _switches(
        (2, "hold", None),
        (4, "cut", None),
        (6, "cut", "X"),
        (9, "release", None),
        (9, "cut", "Y"),
        (11, "hold", None),
        (11, "release", None),
    ),
    "no_camera_ever": _switches((2, "cut", None), (4, "hold", None), (6, "release", None)),
}


@pytest.mark.parametrize("name", sorted(EDGES))
async def test_cut_log_edges_from_every_timestamp(
    database_url: str, db: asyncpg.Connection, name: str
) -> None:
    # logged latest timestamp first (positions run against timestamps), each timestamp's
    # events in the order written
    events = sorted(EDGES[name], key=lambda e: -e["timestampMs"])
    logged = await append(db, [ev.session_started("S"), *events])
    await project(db)
    director = director_of(logged, "S")
    pool = await create_pool(database_url, max_size=2)
    try:
        derived = Derived(pool)
        for low in range(25):
            for high in (low, low + 2, MAX_EPOCH_MS):
                for limit in (1, 1000):
                    want = ref.cut_log(director, low, high, limit)
                    got = decoded(await derived.cut_log("S", low, high, limit))
                    assert got == want, (low, high, limit)
                    assert await paged(derived, low, high, limit) == want, ("paged", low)
    finally:
        await pool.close()


async def test_as_of_waits_for_the_read_tables_to_reach_it(
    database_url: str, db: asyncpg.Connection
) -> None:
    """asOf = a time the projectors have not reached yet: the read waits for them (up to
    its budget), else NotCaughtUp (503 not_caught_up over HTTP)."""
    await append(db, [ev.session_started("S"), ev.director("S", 10, "cut", cameraId="a")])
    await project(db)
    more = await append(db, [ev.director("S", 20, "cut", cameraId="b")])
    as_of = recorded_ms(more[-1].recorded_at)
    pool = await create_pool(database_url, max_size=2)
    try:
        with pytest.raises(NotCaughtUp) as behind:
            await Derived(pool).cut_log("S", 0, MAX_EPOCH_MS, 10, as_of)
        assert behind.value.position == more[-1].position
        with pytest.raises(NotCaughtUp):
            await timeline_as_of(Derived(pool), "S", (0, MAX_EPOCH_MS), 10, as_of)
        # the wait is woken by the projector's notification (the process's one listener)
        waiters, stop = Waiters(database_url, "S"), asyncio.Event()
        listening = asyncio.ensure_future(waiters.run(stop))
        waiting = asyncio.ensure_future(
            Derived(pool, Positions(waiters, 10_000)).cut_log("S", 0, MAX_EPOCH_MS, 10, as_of)
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await project(db)
        body, position = await waiting
        assert position == more[-1].position
        assert [s["cameraId"] for s in msgspec.json.decode(body)["segments"]] == ["a", "b"]
        stop.set()
        await listening
    finally:
        await pool.close()
