"""The read side of the query endpoint: each answer is the JSON of its `result`, as bytes.

Parameters arrive already typed and bounded (the HTTP layer validates them); what is left
here is what only the ledger can tell — an unknown session is a 404, on list routes too —
and the `/production/events` cursor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ..adapters.postgres.database import Pool
from ..adapters.postgres.reads import ReadStore
from ..errors import BadCursor, NotFound

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


def _json_list(items: Sequence[str]) -> bytes:
    return ("[" + ",".join(items) + "]").encode()


class Queries:
    def __init__(self, pool: Pool) -> None:
        self._store = ReadStore(pool)

    async def _known(self, session_id: str) -> None:
        if not await self._store.session_exists(session_id):
            raise NotFound(f"session {session_id} is unknown")

    async def _list(self, rows: list[str], session_id: str) -> bytes:
        if not rows:
            await self._known(session_id)  # an empty list, or a 404
        return _json_list(rows)

    async def session(self, session_id: str) -> bytes:
        found = await self._store.session(session_id)
        if found is None:
            raise NotFound(f"session {session_id} is unknown")
        return found.encode()

    async def active(self, session_type: str | None) -> bytes:
        found = await self._store.active(session_type)
        return b"null" if found is None else found.encode()

    async def timeline(self, session_id: str, start: int, end: int, limit: int) -> bytes:
        found = await self._store.timeline(session_id, start, end, limit)
        if found is None:
            raise NotFound(f"session {session_id} is unknown")
        return found.encode()

    async def cameras(self, session_id: str) -> bytes:
        return await self._list(await self._store.cameras(session_id), session_id)

    async def events(
        self,
        session_id: str,
        num_items: int,
        cursor: str | None,
        event_type: str | None,
        camera_id: str | None,
    ) -> bytes:
        after = decode_cursor(cursor)
        # one row more than asked: whether it exists says if this is the last page
        rows = await self._store.events_page(
            session_id, after, num_items + 1, event_type, camera_id
        )
        if not rows:
            await self._known(session_id)
        page = rows[:num_items]
        done = len(rows) <= num_items
        last = (page[-1][0], page[-1][1]) if page else after
        continue_cursor = encode_cursor(*last)
        body = _json_list([row[2] for row in page])
        return (
            b'{"page":'
            + body
            + b',"isDone":'
            + (b"true" if done else b"false")
            + b',"continueCursor":"'
            + continue_cursor.encode()
            + b'"}'
        )

    async def stills(
        self, session_id: str, limit: int, camera_id: str | None, favorites_only: bool
    ) -> bytes:
        rows = await self._store.stills(session_id, limit, camera_id, favorites_only)
        return await self._list(rows, session_id)

    async def music(self, session_id: str, limit: int) -> bytes:
        return await self._list(await self._store.music(session_id, limit), session_id)

    async def assets(self, session_id: str, asset_type: str | None) -> bytes:
        return await self._list(await self._store.assets(session_id, asset_type), session_id)

    async def camera_row(self, session_id: str, camera_id: str) -> bytes | None:
        found = await self._store.camera(session_id, camera_id)
        return None if found is None else found.encode()

    async def still_row(self, still_id: str) -> bytes | None:
        found = await self._store.still(still_id)
        return None if found is None else found.encode()
