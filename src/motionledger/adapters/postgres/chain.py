"""Reading the log's hash chain back: rows in position order, in large keyset pages."""

from __future__ import annotations

from typing import Any, Final

import asyncpg

from .errors import translating

# body is the raw jsonb text (see database.py's codec); the rest are copies of body fields
COLUMNS: Final = (
    "position",
    "event_id",
    "body",
    "hash",
    "lane",
    "type",
    "session_id",
    "entity_id",
    "timestamp_ms",
)
_PAGE: Final = f"""
SELECT {", ".join(COLUMNS)}
  FROM ledger.events
 WHERE position >= $1
 ORDER BY position
 LIMIT $2
"""


@translating
async def page(conn: asyncpg.Connection, start: int, limit: int) -> list[Any]:
    """Up to `limit` rows from position `start` on, as Records of `COLUMNS`."""
    rows: list[Any] = await conn.fetch(_PAGE, start, limit)
    return rows


@translating
async def stored_hash(conn: asyncpg.Connection, position: int) -> bytes | None:
    value = await conn.fetchval("SELECT hash FROM ledger.events WHERE position = $1", position)
    return None if value is None else bytes(value)


@translating
async def head_position(conn: asyncpg.Connection) -> int:
    """The highest position in the log (0 when empty): one primary-key index probe."""
    value = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
    return int(value)
