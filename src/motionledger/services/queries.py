"""The read side of the query endpoint: each answer is the JSON of its `result`, as bytes,
and the log position it reflects (every event at or below it; see services.positions).

Parameters arrive already typed and bounded (the HTTP layer validates them); what is left
here is what only the ledger can tell — an unknown session is a 404, on list routes too —
and the `/production/events` cursor. Each answer is one statement: its rows, the
checkpoint they reflect, and whether the session exists, in one snapshot.
"""

from __future__ import annotations

import re
from typing import Final

from ..adapters.postgres.database import Pool
from ..adapters.postgres.reads import Read, ReadStore
from ..errors import BadCursor, NotFound
from .positions import NO_WAIT, Answer, Attempt, Positions

_START: Final = (-1, 0)  # before every event: timestamps are >= 0
# `<timestampMs>.<position>` of the last row of a page. Plain digits, so that the OpenAPI
# pattern says exactly which cursors are valid: any string it matches is accepted (a later
# time than any event just gives an empty last page), anything else is a 400 by schema.
CURSOR_PATTERN: Final = r"^(?:(?:-1|[0-9]{1,15})\.[0-9]{1,18})?$"
_CURSOR: Final = re.compile(CURSOR_PATTERN)


def encode_cursor(timestamp_ms: int, position: int) -> str:
    """Where the next page starts: after (timestampMs, position)."""
    return f"{timestamp_ms}.{position}"


def decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return _START
    if _CURSOR.match(cursor) is None:
        raise BadCursor("not a cursor this endpoint made; pass continueCursor back")
    timestamp, position = cursor.split(".")
    return int(timestamp), int(position)


class Queries:
    """The read routes' answers: the JSON of `result` and the position it reflects."""

    def __init__(self, pool: Pool, positions: Positions = NO_WAIT) -> None:
        self._store = ReadStore(pool)
        self._positions = positions

    async def at_least(self, min_position: int | None, attempt: Attempt) -> Answer:
        """`attempt`'s answer once it reflects every event up to `min_position`."""
        return await self._positions.at_least(min_position, attempt)

    @staticmethod
    def _found(found: Read, what: str) -> Answer:
        if found.json is None:
            raise NotFound(f"{what} is unknown")
        return found.json.encode(), found.position

    @staticmethod
    def _list(found: Read, session_id: str) -> Answer:
        if found.json == "[]" and not found.session_known:
            raise NotFound(f"session {session_id} is unknown")
        return (found.json or "[]").encode(), found.position

    async def session(self, session_id: str) -> Answer:
        return self._found(await self._store.session(session_id), f"session {session_id}")

    async def active(self, session_type: str | None) -> Answer:
        found = await self._store.active(session_type)
        return (b"null" if found.json is None else found.json.encode()), found.position

    async def timeline(self, session_id: str, start: int, end: int, limit: int) -> Answer:
        found = await self._store.timeline(session_id, start, end, limit)
        return self._found(found, f"session {session_id}")

    async def cameras(self, session_id: str) -> Answer:
        return self._list(await self._store.cameras(session_id), session_id)

    async def events(
        self,
        session_id: str,
        num_items: int,
        cursor: str | None,
        event_type: str | None,
        camera_id: str | None,
    ) -> Answer:
        after = decode_cursor(cursor)
        # one row more than asked: whether it exists says if this is the last page
        found = await self._store.events_page(
            session_id, after, num_items + 1, event_type, camera_id
        )
        rows = found.rows
        if not rows and not found.session_known:
            raise NotFound(f"session {session_id} is unknown")
        page = rows[:num_items]
        done = len(rows) <= num_items
        last = (page[-1][0], page[-1][1]) if page else after
        continue_cursor = encode_cursor(*last)
        body = ("[" + ",".join(row[2] for row in page) + "]").encode()
        return (
            b'{"page":'
            + body
            + b',"isDone":'
            + (b"true" if done else b"false")
            + b',"continueCursor":"'
            + continue_cursor.encode()
            + b'"}'
        ), found.position

    async def stills(
        self, session_id: str, limit: int, camera_id: str | None, favorites_only: bool
    ) -> Answer:
        found = await self._store.stills(session_id, limit, camera_id, favorites_only)
        return self._list(found, session_id)

    async def music(self, session_id: str, limit: int) -> Answer:
        return self._list(await self._store.music(session_id, limit), session_id)

    async def assets(self, session_id: str, asset_type: str | None) -> Answer:
        return self._list(await self._store.assets(session_id, asset_type), session_id)

    async def camera_row(self, session_id: str, camera_id: str) -> bytes | None:
        found = await self._store.camera(session_id, camera_id)
        return None if found is None else found.encode()

    async def still_row(self, still_id: str) -> bytes | None:
        found = await self._store.still(still_id)
        return None if found is None else found.encode()
