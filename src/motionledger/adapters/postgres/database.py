"""Connections, the jsonb codec, and numbered migrations applied under an advisory lock."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ... import logs, metrics

log = logs.get(__name__)

# Errors that mean "the connection is gone", as opposed to "this data is refused".
DB_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # 57xxx: admin shutdown, cannot connect now
    OSError,
    TimeoutError,
)

MIGRATIONS: Final = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key for migrations: two `migrate`/`serve` at once take turns
_MIGRATION_LOCK: Final = 0x6D6C_6D69_6772_0001
_NAME: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _jsonb_encode(value: bytes | str) -> bytes:
    # binary jsonb is a version byte and the JSON text: canonical bytes go in untouched
    return b"\x01" + (value if isinstance(value, bytes) else value.encode())


def _jsonb_decode(value: bytes) -> bytes:
    return value[1:]


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in and out as raw JSON bytes: msgspec decodes them, or passes them on as Raw."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        format="binary",
    )
    # every new connection (the ingest's, the projector's, each of the pool's) says the
    # database answers: motionledger_database_up follows real use, not only /readyz probes
    metrics.DATABASE_UP.set(1)


async def connect(dsn: str, **options: Any) -> asyncpg.Connection:
    try:
        conn = await asyncpg.connect(dsn, **options)
    except Exception:
        metrics.DATABASE_UP.set(0)  # refused, unreachable, too many connections: not usable
        raise
    await init_connection(conn)
    return conn


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        # a dead database must fail fast so /readyz and retries notice
        timeout=5,
        command_timeout=60,
    )


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


class MigrationError(RuntimeError):
    pass


async def up_to_date(conn: asyncpg.Connection) -> bool:
    """Every migration applied, unchanged: read-only, so a role without DDL rights (the
    least-privilege writer `serve` may run as) can check it."""
    if not await conn.fetchval("SELECT to_regclass('ledger.schema_migrations') IS NOT NULL"):
        return False
    rows = await conn.fetch("SELECT version, checksum FROM ledger.schema_migrations")
    done = {row["version"]: row["checksum"] for row in rows}
    return all(done.get(m.version) == m.checksum for m in migrations())


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing, in order, in one transaction. Idempotent; safe to race."""
    if await up_to_date(conn):
        return []
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS ledger;
            CREATE TABLE IF NOT EXISTS ledger.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM ledger.schema_migrations")
        done = {row["version"]: row for row in rows}
        for migration in migrations():
            row = done.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{row['name']} was changed after it "
                        "was applied; add a new migration instead"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO ledger.schema_migrations (version, name, checksum) VALUES ($1,$2,$3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    if applied_now:
        log.info("migrations_applied", migrations=applied_now)
    return applied_now


async def take_lease(conn: asyncpg.Connection, key: int, stop: asyncio.Event) -> bool:
    """Block until this session holds advisory lock `key` (True), or `stop` is set (False).

    A session lock dies with its connection, so the connection holding it must be the one
    that writes: if it drops, both the lease and the writes are gone together.
    """
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return True
    lock = asyncio.ensure_future(conn.fetchval("SELECT pg_advisory_lock($1)", key))
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({lock, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if lock in done:
        stopping.cancel()
        lock.result()
        return True
    lock.cancel()
    return False


def with_database(dsn: str, database: str) -> str:
    """The same server, another database (unix-socket DSNs included)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def answers(dsn: str, timeout: float = 3) -> bool:
    """Whether a PostgreSQL accepts a connection at `dsn` right now."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await conn.close()
    return True
