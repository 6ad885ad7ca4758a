"""Listing rejected events for an operator: what came in, on which subject, and why."""

from __future__ import annotations

import base64
from datetime import datetime

import msgspec

from ..adapters.postgres import dead_letters
from ..adapters.postgres.database import Connection


class DeadLetter(msgspec.Struct, frozen=True, rename="camel"):
    id: int
    reason: str
    detail: str
    field: str | None
    subject: str
    event_id: str | None
    session_id: str | None
    type: str | None
    received_at: datetime
    recorded_at: datetime
    stream_seq: int
    headers: msgspec.Raw
    # the body exactly as it came: text when it is UTF-8, else base64
    raw: str
    raw_encoding: str


def _as_text(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


async def fetch_dead_letters(
    conn: Connection, *, reason: str | None, session: str | None, limit: int
) -> list[DeadLetter]:
    """The newest `limit` dead letters (0: all), oldest first."""
    rows = await dead_letters.newest(
        conn, reason=reason, session=session, limit=limit if limit > 0 else None
    )
    out = []
    for row in reversed(rows):
        text, encoding = _as_text(bytes(row["raw"]))
        out.append(
            DeadLetter(
                id=row["id"],
                reason=row["reason"],
                detail=row["detail"],
                field=row["field"],
                subject=row["subject"],
                event_id=row["event_id"],
                session_id=row["session_id"],
                type=row["type"],
                received_at=row["received_at"],
                recorded_at=row["recorded_at"],
                stream_seq=row["stream_seq"],
                headers=msgspec.Raw(row["headers"]),
                raw=text,
                raw_encoding=encoding,
            )
        )
    return out
