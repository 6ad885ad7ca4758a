"""Connections, the jsonb codec, and numbered migrations applied under an advisory lock."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ... import logs, metrics
from ...errors import MigrationError
from .errors import translated, translating
from .locks import Lock, lock_transaction

log = logs.get(__name__)

# What the services hold without knowing the driver: a session with the database, a pool.
Connection = asyncpg.Connection
Pool = asyncpg.Pool

MIGRATIONS: Final = Path(__file__).parent / "migrations"
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


@translating
async def connect(dsn: str, **options: Any) -> asyncpg.Connection:
    try:
        conn = await asyncpg.connect(dsn, **options)
    except Exception:
        metrics.DATABASE_UP.set(0)  # refused, unreachable, too many connections: not usable
        raise
    await init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def acquired(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool for a few statements; driver errors leave as ledger errors."""
    with translated():
        async with pool.acquire() as conn:
            yield conn


@contextlib.asynccontextmanager
async def snapshot(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A read-only REPEATABLE READ transaction: every statement in it sees one snapshot."""
    with translated():
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn


def is_open(conn: asyncpg.Connection) -> bool:
    return not conn.is_closed()


def discard(conn: asyncpg.Connection) -> None:
    """Drop a connection at once, whatever its state (and with it any lease it holds)."""
    conn.terminate()


@translating
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


@translating
async def up_to_date(conn: asyncpg.Connection) -> bool:
    """Every migration applied, unchanged: read-only, so a role without DDL rights (the
    least-privilege writer `serve` may run as) can check it."""
    if not await conn.fetchval("SELECT to_regclass('ledger.schema_migrations') IS NOT NULL"):
        return False
    rows = await conn.fetch("SELECT version, checksum FROM ledger.schema_migrations")
    done = {row["version"]: row["checksum"] for row in rows}
    return all(done.get(m.version) == m.checksum for m in migrations())


@translating
async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing, in order, in one transaction. Idempotent; safe to race."""
    if await up_to_date(conn):
        return []
    try:
        applied_now = await _apply_missing(conn)
    except asyncpg.InsufficientPrivilegeError as error:
        raise MigrationError(
            f"the schema is not up to date and this role cannot change it ({error}); "
            "run `motionledger migrate` as the schema's owner"
        ) from error
    if applied_now:
        log.info("migrations_applied", migrations=applied_now)
    return applied_now


async def _apply_missing(conn: asyncpg.Connection) -> list[str]:
    applied_now: list[str] = []
    async with conn.transaction():
        await lock_transaction(conn, Lock.MIGRATION)
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
    return applied_now


@translating
async def migrate_pool(pool: asyncpg.Pool) -> list[str]:
    """`migrate` on a connection of the pool."""
    async with pool.acquire() as conn:
        return await migrate(conn)


def with_database(dsn: str, database: str) -> str:
    """The same server, another database (unix-socket DSNs included)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def ping(pool: asyncpg.Pool) -> None:
    """A round trip, or DatabaseUnavailable."""
    with translated():
        await pool.fetchval("SELECT 1")


async def answers(dsn: str, timeout: float = 3) -> bool:
    """Whether a PostgreSQL accepts a connection at `dsn` right now."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await conn.close()
    return True
