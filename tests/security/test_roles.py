"""Least privilege: the writer appends and never rewrites the log — not even when a superuser
has switched the append-only triggers off — and the reader only reads; `serve` runs as the
writer; the roles migration is safe when many databases on one cluster run it at once."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from nats.aio.client import Client

from motionledger.adapters.embedded.postgres import PostgresProcess
from motionledger.adapters.postgres.database import connect, migrate, migrations
from motionledger.errors import MigrationError
from motionledger.settings import Settings
from tests.support import databases
from tests.support import events as ev
from tests.support.chainlog import seed_log
from tests.support.ledger import running_ledger


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
async def logins(db: asyncpg.Connection, database_url: str) -> AsyncIterator[dict[str, str]]:
    """Login roles (cluster-wide, so uniquely named and dropped afterwards) in each group."""
    tag = uuid.uuid4().hex[:10]
    names = {"writer": f"mlt_writer_{tag}", "reader": f"mlt_reader_{tag}"}
    for group, name in names.items():
        await db.execute(f"CREATE ROLE {name} LOGIN IN ROLE motionledger_{group}")
    try:
        yield {group: as_user(database_url, name) for group, name in names.items()}
    finally:
        for name in names.values():
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await db.execute(f"DROP ROLE IF EXISTS {name}")


@contextlib.asynccontextmanager
async def session(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


def event_row(position: int) -> tuple[object, ...]:
    now = datetime.now(UTC)
    return (
        position,
        f"w{position}",
        "session",
        "session.started",
        f"W{position}",
        None,
        None,
        now,
        b'{"x":1}',
        1,
        position,
        now,
        bytes(32),
    )


INSERT_EVENT = (
    "INSERT INTO ledger.events (position, event_id, lane, type, session_id, entity_id, "
    "timestamp_ms, recorded_at, body, stream_epoch, stream_seq, published_at, hash) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
INSERT_DEAD_LETTER = (
    "INSERT INTO ledger.dead_letters (subject, headers, raw, reason, detail, received_at, "
    "recorded_at, stream_epoch, stream_seq) VALUES ('x.y.z', '{}', 'raw', 'invalid_json', "
    "'test', now(), now(), 1, $1)"
)
REWRITES = [
    "UPDATE ledger.events SET session_id = 'forged'",
    "DELETE FROM ledger.events WHERE position = 1",
    "TRUNCATE ledger.events",
    "UPDATE ledger.dead_letters SET reason = 'forged'",
    "DELETE FROM ledger.dead_letters",
    "TRUNCATE ledger.dead_letters",
    "DELETE FROM ledger.ingest_state",
    "UPDATE ledger.replays SET msg_id = 'x'",
    "ALTER TABLE ledger.events DISABLE TRIGGER events_append_only",
    "ALTER TABLE ledger.events DROP CONSTRAINT events_event_id_key",
    "CREATE TABLE ledger.sneaky (x int)",
    "SET session_replication_role = replica",
]


async def test_the_writer_cannot_rewrite_the_log_even_with_the_triggers_off(
    db: asyncpg.Connection, logins: dict[str, str]
) -> None:
    await seed_log(db, 5)
    await db.execute(INSERT_DEAD_LETTER, 1)
    await db.execute(
        "INSERT INTO ledger.ingest_state (stream, epoch, stream_created, stream_seq, updated_at) "
        "VALUES ('S', 1, 'c', 0, now())"
    )
    # a superuser switches the database's own guard off: only privileges stand in the way
    for table in ("events", "dead_letters", "replays"):
        await db.execute(f"ALTER TABLE ledger.{table} DISABLE TRIGGER {table}_append_only")
    try:
        async with session(logins["writer"]) as writer:
            await writer.execute(INSERT_EVENT, *event_row(6))
            await writer.execute(INSERT_DEAD_LETTER, 2)
            await writer.execute("SELECT ledger.advance_checkpoint('S', 1, 0, 10, 0)")
            for statement in REWRITES:
                with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                    await writer.execute(statement)
                # refused by privileges, not by the (disabled) trigger
                assert "append-only" not in str(refused.value), statement
    finally:
        for table in ("events", "dead_letters", "replays"):
            await db.execute(
                f"ALTER TABLE ledger.{table} ENABLE ALWAYS TRIGGER {table}_append_only"
            )
    assert await db.fetchval("SELECT count(*) FROM ledger.events") == 6
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 2
    assert await db.fetchval("SELECT stream_seq FROM ledger.ingest_state") == 10
    assert await db.fetchval("SELECT count(*) FROM ledger.events WHERE session_id = 'forged'") == 0


async def test_the_reader_only_reads(db: asyncpg.Connection, logins: dict[str, str]) -> None:
    await seed_log(db, 3)
    tables = [
        f"{r['schemaname']}.{r['tablename']}"
        for r in await db.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname IN ('ledger', 'production') ORDER BY 1, 2"
        )
    ]
    assert "production.sessions" in tables
    assert "ledger.events" in tables
    async with session(logins["reader"]) as reader:
        for table in tables:
            await reader.fetch(f"SELECT * FROM {table} LIMIT 1")
        for statement in [
            "INSERT INTO ledger.events SELECT * FROM ledger.events LIMIT 1",
            "INSERT INTO ledger.dead_letters (subject) VALUES ('x')",
            "UPDATE production.sessions SET title = 'x'",
            "DELETE FROM production.cameras",
            "INSERT INTO ledger.ingest_state VALUES ('S', 1, 'c', 0, 0, now())",
            "CREATE TABLE production.sneaky (x int)",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute(statement)


async def test_serve_runs_as_the_writer(
    settings: Settings, db: asyncpg.Connection, nc: Client, logins: dict[str, str]
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    events = [ev.session_started("S1"), ev.camera_upserted("S1", "c1"), ev.director("S1")]
    async with running_ledger(settings.replace(database_url=logins["writer"])) as res:
        seqs = await ev.publish_events(js, root, events)
        last = await ev.publish_raw(js, f"{root}.director.S1", b"not json")
        assert seqs[-1] < last
        for _ in range(500):
            if (await db.fetchval("SELECT stream_seq FROM ledger.ingest_state") or 0) >= last:
                break
            await asyncio.sleep(0.02)
        assert res.ingestor is not None
        assert res.ingestor.committed_seq == last
    logged = [r[0] for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")]
    assert logged == [e["eventId"] for e in events]
    assert await db.fetchval("SELECT reason FROM ledger.dead_letters") == "invalid_json"


async def test_roles_migration_races_across_databases_of_one_fresh_cluster() -> None:
    """A private cluster where the roles do not exist yet: several databases migrate at
    once; the roles are made exactly once and every database gets its grants."""
    with tempfile.TemporaryDirectory(prefix="mlt-roles-") as tmp:
        server = PostgresProcess(Path(tmp), database="postgres")
        await asyncio.to_thread(server.start)
        try:
            admin = await asyncpg.connect(server.dsn("postgres"))
            names = [f"race{i}" for i in range(4)]
            for name in names:
                await admin.execute(f'CREATE DATABASE "{name}"')
            conns = [await connect(server.dsn(name)) for name in names]
            results = await asyncio.gather(*(migrate(c) for c in conns))
            last = f"{migrations()[-1].version:04d}_{migrations()[-1].name}"
            assert all(result and result[-1] == last for result in results)
            assert await asyncio.gather(*(migrate(c) for c in conns)) == [[]] * len(conns)
            roles = await admin.fetch(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'motionledger_%' "
                "ORDER BY 1"
            )
            assert [tuple(r) for r in roles] == [
                ("motionledger_reader", False),
                ("motionledger_writer", False),
            ]
            for conn in conns:
                assert await conn.fetchval(
                    "SELECT has_table_privilege('motionledger_writer', 'ledger.events', 'INSERT')"
                )
                assert not await conn.fetchval(
                    "SELECT has_table_privilege('motionledger_writer', 'ledger.events', 'UPDATE')"
                )
                await conn.close()
            await admin.close()
        finally:
            await asyncio.to_thread(server.stop)


async def test_migrate_as_the_writer_is_a_no_op_but_a_pending_one_is_refused(
    db: asyncpg.Connection, logins: dict[str, str], pg_admin_url: str
) -> None:
    async with session(logins["writer"]) as writer:
        assert await migrate(writer) == []
    url = await databases.create_database(pg_admin_url, migrated=False)
    try:
        writer_url = as_user(url, urlsplit(logins["writer"]).username or "")
        async with session(writer_url) as writer:
            with pytest.raises(MigrationError, match="as the schema's owner"):
                await migrate(writer)
    finally:
        await databases.drop_database(pg_admin_url, url)
