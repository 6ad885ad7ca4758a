"""A dead letter's row: the message whole, what it says about itself, and why it was refused.

Nothing about the message may keep its dead letter out of the database: its descriptive
columns are made storable (PostgreSQL text takes no U+0000, the driver no lone surrogate),
while `raw` keeps the bytes exactly as they came.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from ..adapters.nats.puller import RawMessage
from ..adapters.postgres.log_rows import DeadLetterRow
from ..domain.decoding import Decoded
from ..domain.reasons import Rejection


class _Identity(msgspec.Struct, rename="camel"):
    """What a rejected body may still tell about itself, for finding it among dead letters."""

    type: Any = None
    event_id: Any = None
    session_id: Any = None


_IDENTITY: Final = msgspec.json.Decoder(_Identity)
_HEADERS: Final = msgspec.json.Encoder()


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold U+0000, nor the driver encode a lone surrogate; a dead
    letter's descriptive columns must never be what keeps it out (the raw bytes stay exact
    in `raw`)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\ufffd")


def _short_str(value: Any) -> str | None:
    return _storable(value[:128]) if isinstance(value, str) else None


def identity(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """What a body that is not a valid event may still say about itself: its eventId,
    sessionId and type (each None where unreadable)."""
    try:
        found = _IDENTITY.decode(raw)
    except Exception:  # best effort: nothing about the body may keep its dead letter out
        return None, None, None
    return _short_str(found.event_id), _short_str(found.session_id), _short_str(found.type)


def dead_letter(
    message: RawMessage,
    outcome: Decoded | Rejection,
    verdict: Rejection,
    epoch: int,
    recorded_at: datetime,
) -> DeadLetterRow:
    event_id: str | None
    session_id: str | None
    kind: str | None
    if isinstance(outcome, Decoded):
        event = outcome.event
        event_id, session_id, kind = event.event_id, event.session_id, event.type_name
    else:
        event_id, session_id, kind = identity(message.data)
    headers = {
        _storable(name): [_storable(v) for v in values]
        for name, values in message.header_map().items()
    }
    return DeadLetterRow(
        subject=_storable(message.subject),
        headers=_HEADERS.encode(headers),
        raw=message.data,
        reason=verdict.reason.value,
        detail=_storable(verdict.detail),
        field=None if verdict.field is None else _storable(verdict.field),
        event_id=event_id,
        session_id=session_id,
        type=kind,
        received_at=datetime.fromtimestamp(message.published_ns / 1e9, UTC),
        recorded_at=recorded_at,
        stream_epoch=epoch,
        stream_seq=message.seq,
        repeat_of=verdict.repeat_of,
    )
