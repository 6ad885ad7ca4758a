"""The contract suite: the same logs through the pure twin and through the projectors' SQL
in Postgres, split into batches every which way, must give identical rows."""

from __future__ import annotations

import random
from typing import Any

import asyncpg
import pytest

from motionledger.adapters.postgres.projections import Applier
from motionledger.domain.projections import PROJECTIONS
from motionledger.domain.reducers import Twin
from tests.support import events as ev
from tests.support.projections import append, scenarios, table_rows

_PG_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "double precision": "double precision",
    "boolean": "boolean",
    "jsonb": "jsonb",
}


async def test_tables_match_the_declarations(db: asyncpg.Connection) -> None:
    for projection in PROJECTIONS:
        rows = await db.fetch(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'production' AND table_name = $1 ORDER BY ordinal_position",
            projection.name,
        )
        got = [(r["column_name"], r["data_type"], r["is_nullable"] == "YES") for r in rows]
        want = [(c.name, _PG_TYPES[c.sql_type], c.nullable) for c in projection.all_columns]
        assert got == want, projection.name
        primary = await db.fetchval(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = $1::regclass AND i.indisprimary",
            projection.table,
        )
        assert primary == "id"
    states = await db.fetch("SELECT projection, position FROM production.projection_state")
    assert {r["projection"]: r["position"] for r in states} == {p.name: 0 for p in PROJECTIONS}


async def _project(db: asyncpg.Connection, batch_sizes: list[int], rnd: random.Random) -> None:
    appliers = [Applier(PROJECTIONS, batch=size) for size in batch_sizes]
    while not (await rnd.choice(appliers).step(db)).caught_up:
        pass


async def _assert_same(db: asyncpg.Connection, twin: Twin) -> None:
    for projection in PROJECTIONS:
        assert await table_rows(db, projection) == twin.rows(projection.name), projection.name


@pytest.mark.parametrize("scenario", sorted(scenarios()))
@pytest.mark.parametrize("batch", [1, 3, 1000])
async def test_scenarios_give_the_twins_rows(
    db: asyncpg.Connection, scenario: str, batch: int
) -> None:
    logged = await append(db, scenarios()[scenario])
    await _project(db, [batch], random.Random(0))
    await _assert_same(db, Twin().feed(logged))


def random_log(rnd: random.Random, size: int, prefix: str = "") -> list[dict[str, Any]]:
    """A log the judge would accept in full, touching every event type and optional field."""
    sessions: list[str] = []
    cameras: list[tuple[str, str]] = []
    stills: list[tuple[str, str]] = []
    out: list[dict[str, Any]] = []

    def maybe(value: Any) -> Any:
        return value if rnd.random() < 0.5 else None

    def meta() -> Any:
        return rnd.choice([None, {"n": rnd.randrange(9)}, [1, "x", None], "text", 2.5, True])

    while len(out) < size:
        kind = rnd.random()
        if not sessions or kind < 0.05:
            session = f"{prefix}S{len(sessions)}"
            sessions.append(session)
            out.append(
                ev.session_started(
                    session,
                    status=rnd.choice([None, "setup", "rolling"]),
                    title=maybe("t"),
                    startedAt=maybe(rnd.randrange(10**12)),
                    metadata=meta(),
                )
            )
            continue
        session = rnd.choice(sessions)
        if kind < 0.12:
            out.append(
                ev.session_updated(
                    session,
                    status=maybe(rnd.choice(["paused", "rolling", "complete"])),
                    title=maybe(f"t{rnd.randrange(5)}"),
                    musicMode=maybe("disabled"),
                    metadata=meta(),
                )
            )
        elif kind < 0.15:
            out.append(ev.session_completed(session, status=maybe("cancelled"), notes=maybe("n")))
        elif kind < 0.25:
            camera = f"c{rnd.randrange(4)}"
            cameras.append((session, camera))
            out.append(
                ev.camera_upserted(
                    session,
                    camera,
                    deviceName=maybe(f"d{rnd.randrange(3)}"),
                    priorityWeight=rnd.choice([0.5, 1.0, 2.25]),
                    isActive=rnd.random() < 0.5,
                    isWideFallback=maybe(rnd.random() < 0.5),
                    metadata=meta(),
                )
            )
        elif kind < 0.35 and cameras:
            s, camera = rnd.choice(cameras)
            out.append(
                ev.camera_state(
                    s,
                    camera,
                    isActive=maybe(rnd.random() < 0.5),
                    role=maybe(rnd.choice(["hero", "wide"])),
                    priorityWeight=maybe(rnd.random()),
                    metadata=meta(),
                )
            )
        elif kind < 0.45:
            still = f"{prefix}st{len(stills)}"
            stills.append((session, still))
            out.append(
                ev.still_created(
                    session,
                    still,
                    score=rnd.random(),
                    isFavorite=maybe(rnd.random() < 0.5),
                    selectedForEdit=maybe(True),
                    poseLabel=maybe("p"),
                )
            )
        elif kind < 0.55 and stills:
            s, still = rnd.choice(stills)
            out.append(
                ev.still_updated(
                    s,
                    still,
                    score=maybe(rnd.random()),
                    isFavorite=maybe(rnd.random() < 0.5),
                    imagePath=maybe("/i.jpg"),
                    metadata=meta(),
                )
            )
        elif kind < 0.62:
            out.append(ev.music(session, rnd.randrange(10**6), tempo=maybe(rnd.random() * 200)))
        elif kind < 0.66:
            out.append(
                ev.asset(session, f"{prefix}a{len(out)}", status=maybe("final"), metadata=meta())
            )
        else:
            out.append(
                ev.director(
                    session,
                    rnd.randrange(10**6),
                    rnd.choice(["cut", "hold", "bar_fire"]),
                    cameraId=maybe("c1"),
                    score=maybe(rnd.random()),
                    metadata=meta(),
                )
            )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_logs_in_random_batches_give_the_twins_rows(
    db: asyncpg.Connection, seed: int
) -> None:
    rnd = random.Random(seed)
    logged = await append(db, random_log(rnd, 400))
    await _project(db, [1, 2, 7, 50, 5000], rnd)
    await _assert_same(db, Twin().feed(logged))
    # more arrives after a catch-up: the checkpoints carry on from where they stand
    more = await append(db, [ev.session_started("late"), ev.camera_upserted("late", "c")])
    await _project(db, [1, 5000], rnd)
    await _assert_same(db, Twin().feed([*logged, *more]))
    states = await db.fetch("SELECT position FROM production.projection_state")
    assert {r["position"] for r in states} == {more[-1].position}
