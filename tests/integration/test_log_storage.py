"""The log's storage guarantees: immutable for every role, idempotent and race-safe
migrations, rows PostgreSQL refuses handled without blocking the lane."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from nats.aio.client import Client

from motionledger.adapters.postgres.database import connect, migrate, migrations
from motionledger.errors import MigrationError
from motionledger.settings import Settings
from tests.support import databases
from tests.support import events as ev
from tests.support.ledger import running_ledger

from .test_crash import wait_checkpoint


async def seed_one_event(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO ledger.events (position, event_id, lane, type, session_id, recorded_at, body, "
        "stream_epoch, stream_seq, published_at, hash) "
        "VALUES (1, 'e1', 'session', 'session.started', 'S1', now(), '{}', 1, 1, now(), $1)",
        bytes(32),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger.events SET session_id = 'X'",
        "UPDATE ledger.events SET session_id = 'X' WHERE false",
        "DELETE FROM ledger.events",
        "DELETE FROM ledger.events WHERE position = 999",
        "TRUNCATE ledger.events",
        "TRUNCATE ledger.dead_letters",
        "DELETE FROM ledger.dead_letters",
    ],
)
async def test_log_refuses_change_even_for_a_superuser(
    db: asyncpg.Connection, statement: str
) -> None:
    await seed_one_event(db)
    assert await db.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(statement)
    # replication mode does not switch the guard off either
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(statement)
    assert await db.fetchval("SELECT session_id FROM ledger.events") == "S1"


async def test_migrate_is_idempotent_and_safe_to_race(pg_admin_url: str) -> None:
    url = await databases.create_database(pg_admin_url, migrated=False)
    try:
        conns = [await connect(url) for _ in range(4)]
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = [r for r in results if r]
        assert len(applied) == 1
        assert applied[0] == [f"{m.version:04d}_{m.name}" for m in migrations()]
        assert await migrate(conns[0]) == []
        for conn in conns:
            await conn.close()
    finally:
        await databases.drop_database(pg_admin_url, url)


async def test_a_changed_migration_is_refused(db: asyncpg.Connection) -> None:
    await db.execute("UPDATE ledger.schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(db)


async def test_a_row_postgres_refuses_is_dead_lettered_and_the_lane_moves_on(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    """The judge screens out what PostgreSQL cannot store (NUL, out-of-range numbers, deep
    nesting); should PostgreSQL still refuse a row, the batch is diagnosed, that event is
    dead-lettered as `storage_refused` and the events around it are logged. A CHECK
    constraint on this test's private database plays the refusing PostgreSQL."""
    await db.execute(
        "ALTER TABLE ledger.events ADD CONSTRAINT test_refuses_poison "
        "CHECK (body->>'reason' IS DISTINCT FROM 'poison')"
    )
    js = nc.jetstream()
    batch = [
        ev.session_started("S1"),
        ev.director("S1"),
        ev.director("S1", reason="poison"),
        ev.director("S1"),
        ev.camera_upserted("S1", "c1"),
    ]
    async with running_ledger(settings):
        seqs = await ev.publish_events(js, settings.subject_root, batch)
        await wait_checkpoint(db, settings.stream, seqs[-1])
        # the lane is not blocked: later events still go in
        more = [ev.camera_state("S1", "c1", isActive=False), ev.director("S1")]
        seqs = await ev.publish_events(js, settings.subject_root, more)
        await wait_checkpoint(db, settings.stream, seqs[-1])
    logged = [
        r["event_id"]
        for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")
    ]
    assert logged == [e["eventId"] for e in batch if e.get("reason") != "poison"] + [
        e["eventId"] for e in more
    ]
    dead = await db.fetchrow("SELECT reason, event_id, detail, raw FROM ledger.dead_letters")
    assert (dead["reason"], dead["event_id"]) == ("storage_refused", batch[2]["eventId"])
    assert "test_refuses_poison" in dead["detail"]
    assert json.loads(bytes(dead["raw"])) == batch[2]
    positions = [r[0] for r in await db.fetch("SELECT position FROM ledger.events ORDER BY 1")]
    assert positions == list(range(1, 7))
