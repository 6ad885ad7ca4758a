"""The rows of the log's two tables, each column declared once with its SQL type.

A row is a NamedTuple: the code reads fields by name, and COPY takes it as the plain tuple it
is. The (name, SQL type) pairs every statement needs come from the same declaration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, NamedTuple, get_type_hints

from ...domain.events import TAG_OF, Event


class EventRow(NamedTuple):
    """One row of ledger.events."""

    position: Annotated[int, "bigint"]
    event_id: Annotated[str, "text"]
    lane: Annotated[str, "text"]
    type: Annotated[str, "text"]
    session_id: Annotated[str, "text"]
    entity_id: Annotated[str | None, "text"]
    timestamp_ms: Annotated[int | None, "bigint"]
    recorded_at: Annotated[datetime, "timestamptz"]
    body: Annotated[bytes, "jsonb"]
    stream_epoch: Annotated[int, "integer"]
    stream_seq: Annotated[int, "bigint"]
    published_at: Annotated[datetime, "timestamptz"]
    hash: Annotated[bytes, "bytea"]


class DeadLetterRow(NamedTuple):
    """One row of ledger.dead_letters (its id is the database's)."""

    subject: Annotated[str, "text"]
    headers: Annotated[bytes, "jsonb"]
    raw: Annotated[bytes, "bytea"]
    reason: Annotated[str, "text"]
    detail: Annotated[str, "text"]
    field: Annotated[str | None, "text"]
    event_id: Annotated[str | None, "text"]
    session_id: Annotated[str | None, "text"]
    type: Annotated[str | None, "text"]
    received_at: Annotated[datetime, "timestamptz"]
    recorded_at: Annotated[datetime, "timestamptz"]
    stream_epoch: Annotated[int, "integer"]
    stream_seq: Annotated[int, "bigint"]
    # the dead letter whose verdict this one repeats (the same eventId and body again)
    repeat_of: Annotated[int | None, "bigint"] = None


def sql_columns(row: type[tuple[Any, ...]]) -> tuple[tuple[str, str], ...]:
    """(column, SQL type) of a row type, in field order."""
    hints = get_type_hints(row, include_extras=True)
    return tuple((name, hints[name].__metadata__[0]) for name in hints)


_new_row: Final = tuple.__new__
# column names, in table order (what COPY takes)
EVENT_COLUMNS: Final = EventRow._fields
DEAD_LETTER_COLUMNS: Final = DeadLetterRow._fields


def event_row(
    position: int,
    event: Event,
    body: bytes,
    recorded_at: datetime,
    epoch: int,
    seq: int,
    published_at: datetime,
    chain: bytes,
) -> EventRow:
    """The log row of an accepted event, from the event and where it sits."""
    # the tuple's own constructor: a NamedTuple's __new__ is a Python call, and this runs
    # once per event on the ingest's hot path
    return _new_row(
        EventRow,
        (
            position,
            event.event_id,
            event.lane,
            TAG_OF[type(event)],
            event.session_id,
            event.entity_id,
            event.timestamp,
            recorded_at,
            body,
            epoch,
            seq,
            published_at,
            chain,
        ),
    )
