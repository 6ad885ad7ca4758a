"""`motionledger dead-letters`: rejected events with their reasons, as a table or JSON lines."""

from __future__ import annotations

import sys

import msgspec
from rich.console import Console
from rich.table import Table

from ..adapters.postgres.database import connect, discard
from ..services.dead_letters import fetch_dead_letters


async def list_dead_letters(
    dsn: str, *, as_json: bool, reason: str | None, session: str | None, limit: int
) -> int:
    conn = await connect(dsn)
    try:
        letters = await fetch_dead_letters(conn, reason=reason, session=session, limit=limit)
    finally:
        discard(conn)
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
