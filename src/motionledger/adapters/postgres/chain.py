"""Reading the log's hash chain back: rows in position order, in large keyset pages."""

from __future__ import annotations

from typing import Any, Final

import asyncpg

# position, event_id, body (raw jsonb text, see database.py's codec), hash
_PAGE: Final = """
SELECT position, event_id, body, hash
  FROM ledger.events
 WHERE position >= $1
 ORDER BY position
 LIMIT $2
"""


async def page(conn: asyncpg.Connection, start: int, limit: int) -> list[Any]:
    """Up to `limit` rows from position `start` on, as asyncpg Records (tuple-like)."""
    rows: list[Any] = await conn.fetch(_PAGE, start, limit)
    return rows


async def stored_hash(conn: asyncpg.Connection, position: int) -> bytes | None:
    value = await conn.fetchval("SELECT hash FROM ledger.events WHERE position = $1", position)
    return None if value is None else bytes(value)


async def head_position(conn: asyncpg.Connection) -> int:
    """The highest position in the log (0 when empty): one primary-key index probe."""
    value = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
    return int(value)
