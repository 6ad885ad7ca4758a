"""Reading the dead letters back, newest first, for an operator."""

from __future__ import annotations

from typing import Any, Final

import asyncpg

from .errors import translating

_SQL: Final = """
SELECT id, reason, detail, field, subject, event_id, session_id, type, received_at,
       recorded_at, stream_seq, headers, raw
  FROM ledger.dead_letters
 WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR session_id = $2)
 ORDER BY id DESC
 LIMIT $3
"""


@translating
async def newest(
    conn: asyncpg.Connection, *, reason: str | None, session: str | None, limit: int | None
) -> list[dict[str, Any]]:
    """Up to `limit` dead letters (all for None), newest first, as column -> value."""
    return [dict(row) for row in await conn.fetch(_SQL, reason, session, limit)]
