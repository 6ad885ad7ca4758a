"""The read side of the query endpoint: each answer is the JSON of its `result`, as bytes.

Parameters arrive already typed and bounded (the HTTP layer validates them); what is left
here is what only the ledger can tell — an unknown session is a 404, on list routes too —
and the `/production/events` cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Final

import asyncpg

from ..adapters.postgres import reads
from ..domain.events import MAX_EPOCH_MS


class NotFound(Exception):
    pass


class BadCursor(ValueError):
    pass


_START: Final = (-1, 0)  # before every event: timestamps are >= 0


def encode_cursor(timestamp_ms: int, position: int) -> str:
    """Opaque to clients: where the next page starts, as (timestampMs, position)."""
    raw = f"1:{timestamp_ms}:{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return _START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, timestamp, position = raw.split(":")
        key = int(timestamp), int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("not a cursor this endpoint made; pass continueCursor back") from None
    if version != "1" or not (-1 <= key[0] <= MAX_EPOCH_MS) or key[1] < 0:
        raise BadCursor("not a cursor this endpoint made; pass continueCursor back")
    return key


def _json_list(items: Sequence[str]) -> bytes:
    return ("[" + ",".join(items) + "]").encode()


class Queries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _known(self, session_id: str) -> None:
        if not await self._pool.fetchval(reads.SESSION_EXISTS, session_id):
            raise NotFound(f"session {session_id} is unknown")

    async def _list(self, sql: str, session_id: str, *args: object) -> bytes:
        rows = await self._pool.fetch(sql, session_id, *args)
        if not rows:
            await self._known(session_id)  # an empty list, or a 404
        return _json_list([row[0] for row in rows])

    async def session(self, session_id: str) -> bytes:
        found = await self._pool.fetchval(reads.SESSION, session_id)
        if found is None:
            raise NotFound(f"session {session_id} is unknown")
        return str(found).encode()

    async def active(self, session_type: str | None) -> bytes:
        if session_type is None:
            found = await self._pool.fetchval(reads.ACTIVE)
        else:
            found = await self._pool.fetchval(reads.ACTIVE_OF_TYPE, session_type)
        return b"null" if found is None else str(found).encode()

    async def timeline(self, session_id: str, start: int, end: int, limit: int) -> bytes:
        found = await self._pool.fetchval(reads.TIMELINE, session_id, start, end, limit)
        if found is None:
            raise NotFound(f"session {session_id} is unknown")
        return str(found).encode()

    async def cameras(self, session_id: str) -> bytes:
        return await self._list(reads.CAMERAS_OF, session_id)

    async def events(
        self,
        session_id: str,
        num_items: int,
        cursor: str | None,
        event_type: str | None,
        camera_id: str | None,
    ) -> bytes:
        after = decode_cursor(cursor)
        sql = _EVENTS[(event_type is not None, camera_id is not None)]
        filters = [f for f in (event_type, camera_id) if f is not None]
        # one row more than asked: whether it exists says if this is the last page
        rows = await self._pool.fetch(sql, session_id, *after, num_items + 1, *filters)
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
        sql = _STILLS[(camera_id is not None, favorites_only)]
        args = (limit,) if camera_id is None else (limit, camera_id)
        return await self._list(sql, session_id, *args)

    async def music(self, session_id: str, limit: int) -> bytes:
        return await self._list(reads.MUSIC, session_id, limit)

    async def assets(self, session_id: str, asset_type: str | None) -> bytes:
        if asset_type is None:
            return await self._list(_ASSETS[False], session_id)
        return await self._list(_ASSETS[True], session_id, asset_type)

    async def camera_row(self, session_id: str, camera_id: str) -> bytes | None:
        found = await self._pool.fetchval(reads.CAMERA, f"{session_id}:{camera_id}")
        return None if found is None else str(found).encode()

    async def still_row(self, still_id: str) -> bytes | None:
        found = await self._pool.fetchval(reads.STILL, still_id)
        return None if found is None else str(found).encode()


_EVENTS: Final = {
    (t, c): reads.events_page(event_type=t, camera=c) for t in (False, True) for c in (False, True)
}
_STILLS: Final = {
    (c, f): reads.stills(camera=c, favorites=f) for c in (False, True) for f in (False, True)
}
_ASSETS: Final = {a: reads.assets(asset_type=a) for a in (False, True)}
