"""The live stream's SQL: a session's log rows by position, and the rows a commit burst
added for the sessions someone follows — each one statement over the log's primary key or
`events_session_position` (migration 0006). Bodies come as the log holds them (jsonb's
JSON text, one line)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import asyncpg

from .errors import translating


class LoggedEvent(NamedTuple):
    position: int
    session_id: str
    type: str
    body: bytes  # the event's JSON as logged (with type and eventId)


SESSION_STARTED: Final = (
    "SELECT EXISTS (SELECT 1 FROM ledger.events WHERE session_id = $1 AND type = 'session.started')"
)
HEAD: Final = "SELECT coalesce(max(position), 0) AS head FROM ledger.events"
# $1 sessions, $2 after this position, $3 at most this many: the rows, and the head of the
# same snapshot (every row of those sessions up to it is among them unless $3 cut them off)
NEW_EVENTS: Final = f"""
SELECT h.head, e.position, e.session_id, e.type, e.body
  FROM ({HEAD}) h
  LEFT JOIN LATERAL (
        SELECT position, session_id, type, body FROM ledger.events
         WHERE session_id = ANY($1::text[]) AND position > $2
         ORDER BY position LIMIT $3) e ON true
 ORDER BY e.position
"""
# $1 session, positions in ($2, $3], at most $4 of them
SESSION_EVENTS: Final = """
SELECT position, session_id, type, body FROM ledger.events
 WHERE session_id = $1 AND position > $2 AND position <= $3
 ORDER BY position LIMIT $4
"""


@translating
async def session_started(pool: asyncpg.Pool, session_id: str) -> bool:
    """Whether the log holds the session's `session.started`."""
    return bool(await pool.fetchval(SESSION_STARTED, session_id))


@translating
async def head(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(HEAD))


@translating
async def new_events(
    pool: asyncpg.Pool, sessions: Sequence[str], after: int, limit: int
) -> tuple[int, list[LoggedEvent]]:
    """The log's head, and the first `limit` rows of `sessions` after `after`, in order."""
    rows = await pool.fetch(NEW_EVENTS, list(sessions), after, limit)
    found = [LoggedEvent(r[1], r[2], r[3], r[4]) for r in rows if r[1] is not None]
    return int(rows[0][0]), found


@translating
async def session_events(
    pool: asyncpg.Pool, session_id: str, after: int, upto: int, limit: int
) -> list[LoggedEvent]:
    """The session's first `limit` rows in (after, upto], in order."""
    rows = await pool.fetch(SESSION_EVENTS, session_id, after, upto, limit)
    return [LoggedEvent(*row) for row in rows]
