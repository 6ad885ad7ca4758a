"""Every advisory lock the ledger takes, in one place: the keys must never collide.

A session lock (a lease) lives as long as its connection: the connection that holds it must
be the one that writes, so that if it drops, the lease and the writes are gone together.
"""

from __future__ import annotations

import asyncio
import enum

import asyncpg

from .errors import translating


class Lock(enum.IntEnum):
    WRITER = 0x6D6C_696E_6765_7374  # one ingesting process per database (a lease)
    PROJECTOR = 0x6D6C_7072_6F6A_6563  # one projecting process per database (a lease)
    REBUILD = 0x6D6C_7265_6275_696C  # held by a rebuild for its whole run
    MIGRATION = 0x6D6C_6D69_6772_0001  # a transaction lock: two `migrate` at once take turns
    REPLAY = 0x6D6C_7265_706C_6179  # one dead-letter replay at a time


@translating
async def try_lock(conn: asyncpg.Connection, key: Lock) -> bool:
    """Take the session lock now if it is free."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", int(key)))


@translating
async def lock(conn: asyncpg.Connection, key: Lock) -> None:
    """Take the session lock, waiting as long as it takes."""
    await conn.execute("SELECT pg_advisory_lock($1)", int(key))


@translating
async def unlock(conn: asyncpg.Connection, key: Lock) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", int(key))


@translating
async def lock_transaction(conn: asyncpg.Connection, key: Lock) -> None:
    """Take a lock held until the current transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", int(key))


@translating
async def take_lease(conn: asyncpg.Connection, lease: Lock, stop: asyncio.Event) -> bool:
    """Block until this session holds `lease` (True), or `stop` is set (False)."""
    if await try_lock(conn, lease):
        return True
    waiting = asyncio.ensure_future(conn.fetchval("SELECT pg_advisory_lock($1)", int(lease)))
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        stopping.cancel()
        waiting.result()
        return True
    waiting.cancel()
    return False
