"""Listing rejected events for an operator: what came in, on which subject, and why."""

from __future__ import annotations

import base64
import sys
from datetime import datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from ..adapters.postgres.database import connect


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


_SQL = """
SELECT id, reason, detail, field, subject, event_id, session_id, type, received_at,
       recorded_at, stream_seq, headers, raw
  FROM ledger.dead_letters
 WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR session_id = $2)
 ORDER BY id DESC
 LIMIT $3
"""


def _as_text(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


async def fetch_dead_letters(
    conn: Any, *, reason: str | None, session: str | None, limit: int
) -> list[DeadLetter]:
    rows = await conn.fetch(_SQL, reason, session, limit if limit > 0 else None)
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


async def list_dead_letters(
    dsn: str, *, as_json: bool, reason: str | None, session: str | None, limit: int
) -> int:
    conn = await connect(dsn)
    try:
        letters = await fetch_dead_letters(conn, reason=reason, session=session, limit=limit)
    finally:
        await conn.close()
    if as_json:
        encoder = msgspec.json.Encoder()
        for letter in letters:
            sys.stdout.buffer.write(encoder.encode(letter) + b"\n")
        sys.stdout.flush()
        return 0
    table = Table(title=f"dead letters ({len(letters)})", show_lines=False)
    for column in ("id", "received", "reason", "subject", "eventId", "detail"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.received_at.isoformat(timespec="seconds"),
            letter.reason,
            letter.subject,
            letter.event_id or "-",
            letter.detail[:200],
        )
    # off a terminal rich assumes 80 columns; a pipe or a log file deserves whole lines
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
