"""`motionledger rebuild`: deterministic, equal to the live projection, and online."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest
from nats.aio.client import Client

from motionledger.adapters.postgres.projections import Applier
from motionledger.domain.projections import PROJECTIONS
from motionledger.errors import RebuildBusy
from motionledger.services.rebuild import rebuild
from motionledger.settings import Settings
from tests.integration.test_projection_contract import random_log
from tests.integration.test_projection_projector import min_position, until
from tests.support import events as ev
from tests.support.ledger import running_ledger, settings_env
from tests.support.projections import (
    all_dumps,
    append,
    assert_tables_equal_twin,
    scenarios,
    twin_from_log,
)


async def project_all(db: asyncpg.Connection) -> None:
    applier = Applier(PROJECTIONS, batch=97)
    while not (await applier.step(db)).caught_up:
        pass


async def index_catalog(db: asyncpg.Connection) -> list[tuple[str, str, str]]:
    rows = await db.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'production'"
        " ORDER BY indexname"
    )
    return [tuple(r) for r in rows]


async def test_rebuilds_are_byte_identical_to_the_live_tables(
    database_url: str, db: asyncpg.Connection
) -> None:
    await append(db, scenarios()["interleaved"])
    await append(db, random_log(random.Random(21), 1200, "r"))
    await project_all(db)
    live = await all_dumps(db)
    indexes = await index_catalog(db)
    role = f"mlt_reader_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE ROLE {role}")
    try:
        await db.execute(f"GRANT SELECT ON production.director_events TO {role}")
        first = await rebuild(database_url, chunk=333)
        assert await all_dumps(db) == live
        assert first.position == await db.fetchval("SELECT max(position) FROM ledger.events")
        second = await rebuild(database_url, ["director_events", "sessions"], chunk=5000)
        assert second.names == ("sessions", "director_events")
        assert await all_dumps(db) == live
        assert await index_catalog(db) == indexes  # same names, same definitions
        assert await db.fetchval(
            "SELECT has_table_privilege($1, 'production.director_events', 'SELECT')", role
        )
        leftovers = await db.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'production'"
            " AND tablename LIKE '%\\_\\_rebuild'"
        )
        assert leftovers == 0
    finally:
        await db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
    await assert_tables_equal_twin(db, await twin_from_log(db))


async def test_rebuild_without_serve_brings_tables_to_the_head(
    database_url: str, db: asyncpg.Connection
) -> None:
    logged = await append(db, random_log(random.Random(3), 300))
    # nothing projected yet: the rebuilt tables stand at the head, their checkpoints too
    await rebuild(database_url, ["cameras"])
    states = dict(await db.fetch("SELECT projection, position FROM production.projection_state"))
    assert states["cameras"] == logged[-1].position
    assert states["sessions"] == 0
    await project_all(db)  # the live projector carries on from each table's own checkpoint
    await assert_tables_equal_twin(db, await twin_from_log(db))


async def test_one_rebuild_at_a_time(database_url: str, db: asyncpg.Connection) -> None:
    await append(db, random_log(random.Random(4), 50))
    holder = await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", 0x6D6C_7265_6275_696C)
        with pytest.raises(RebuildBusy):
            await rebuild(database_url)
    finally:
        await holder.close()


async def test_the_command(database_url: str, db: asyncpg.Connection) -> None:
    await append(db, random_log(random.Random(5), 200))
    env = settings_env(Settings(database_url=database_url, nats_url="nats://127.0.0.1:1"))
    done = subprocess.run(
        [sys.executable, "-m", "motionledger", "rebuild", "director_events", "assets"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"at position 200 " in done.stderr
    assert b"events/s" in done.stderr
    await assert_tables_equal_twin(db, await _twin_of(db, {"assets", "director_events"}))
    bad = subprocess.run(
        [sys.executable, "-m", "motionledger", "rebuild", "nope"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert b"unknown projection 'nope'" in bad.stderr


async def _twin_of(db: asyncpg.Connection, names: set[str]) -> object:
    twin = await twin_from_log(db)
    for name in twin.tables:
        if name not in names:
            twin.tables[name] = {}
    return twin


async def test_rebuild_while_serving_under_ingest_and_reads(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """Events stream in and reads hammer the endpoint while two rebuilds run: no read
    fails, no read sees fewer rows than one before it, and the end state equals the log."""
    js = nc.jetstream()
    root = settings.subject_root
    async with running_ledger(settings):
        await ev.publish_events(
            js, root, [ev.session_started("S1"), ev.camera_upserted("S1", "c1")]
        )
        await ev.publish_events(js, root, [ev.director("S1", i) for i in range(3000)])
        stop = asyncio.Event()
        failures: list[str] = []
        counts: list[int] = []
        reads: list[str] = []

        async def publisher() -> None:
            ts = 10_000
            while not stop.is_set():
                batch = [ev.director("S1", ts + i, cameraId="c1") for i in range(50)]
                batch.append(ev.camera_state("S1", "c1", isActive=ts % 2 == 0))
                await ev.publish_events(js, root, batch)
                ts += 50
                await asyncio.sleep(0.01)

        async def http_reader() -> None:
            base = f"http://127.0.0.1:{settings.http_port}/production"
            async with httpx.AsyncClient(timeout=10) as http:
                while not stop.is_set():
                    for path, params in [
                        ("/session/timeline", {"sessionId": "S1", "limit": 50}),
                        ("/events", {"sessionId": "S1", "numItems": 200}),
                        ("/cameras", {"sessionId": "S1"}),
                    ]:
                        response = await http.get(base + path, params=params)
                        reads.append(path)
                        if response.status_code != 200 or not response.json()["ok"]:
                            failures.append(f"{path}: {response.status_code} {response.text}")

        async def sql_reader() -> None:
            conn = await asyncpg.connect(settings.database_url)
            try:
                while not stop.is_set():
                    try:
                        counts.append(
                            await conn.fetchval("SELECT count(*) FROM production.director_events")
                        )
                    except asyncpg.PostgresError as error:
                        failures.append(f"sql: {error!r}")
                    await asyncio.sleep(0)
            finally:
                await conn.close()

        loads = [
            asyncio.ensure_future(f()) for f in (publisher, http_reader, http_reader, sql_reader)
        ]
        try:
            await until(lambda: len(counts) > 10, what="readers running")
            first = await rebuild(settings.database_url or "", chunk=700)
            second = await rebuild(settings.database_url or "", ["director_events"], chunk=1000)
            assert second.position >= first.position
        finally:
            stop.set()
            await asyncio.gather(*loads)
        print(
            f"rebuilds at {first.position}, {second.position}; {len(reads)} HTTP reads,"
            f" {len(counts)} SQL reads, rows {counts[0]} -> {counts[-1]}"
        )
        assert failures == []
        assert second.position > first.position, "events kept arriving during the rebuilds"
        assert len(reads) > 30
        assert counts == sorted(counts), "a read saw fewer rows than an earlier one"
        head = await db.fetchval("SELECT max(position) FROM ledger.events")
        await until(lambda: _caught_up(db, head), 20, "projected to the head")
        await assert_tables_equal_twin(db, await twin_from_log(db))
        live = await all_dumps(db)
        await rebuild(settings.database_url or "")
        assert await all_dumps(db) == live  # a second rebuild changes nothing


async def _caught_up(db: asyncpg.Connection, head: int) -> bool:
    return await min_position(db) >= head
