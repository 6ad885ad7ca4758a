"""A fresh database per test, cloned from a migrated template (fast: no migrations per test)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from urllib.parse import urlsplit

import asyncpg

from motionledger.adapters.postgres.database import connect, migrate, migrations, with_database

_TEMPLATE_LOCK = 0x6D6C_7465_6D70


def template_name() -> str:
    digest = hashlib.sha256("".join(m.checksum for m in migrations()).encode()).hexdigest()
    return f"mlt_template_{digest[:12]}"


async def ensure_template(admin_url: str) -> str:
    """The migrated template for the current migrations, made once (even across sessions)."""
    name = template_name()
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK)
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            building = f"{name}_building"
            await admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
            await admin.execute(f'CREATE DATABASE "{building}"')
            conn = await connect(with_database(admin_url, building))
            try:
                await migrate(conn)
            finally:
                await conn.close()
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        return name
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK)
        await admin.close()


async def create_database(admin_url: str, *, migrated: bool = True) -> str:
    name = f"mlt_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(admin_url)
    try:
        if migrated:
            template = await ensure_template(admin_url)
            for attempt in range(20):
                try:
                    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    break
                except asyncpg.ObjectInUseError:  # another test is cloning it this instant
                    await asyncio.sleep(0.05 * (attempt + 1))
            else:
                raise RuntimeError("template database stayed busy")
        else:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
