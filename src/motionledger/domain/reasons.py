"""Stable reason codes for rejected events: operators, alerts and HTTP clients key on them."""

from __future__ import annotations

import enum
from typing import Final

import msgspec


class Reason(enum.StrEnum):
    # the body itself is wrong: the same bytes are rejected whatever the ledger holds
    INVALID_JSON = "invalid_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_EVENT = "invalid_event"
    TOO_LARGE = "too_large"
    UNSTORABLE = "unstorable"
    SUBJECT_MISMATCH = "subject_mismatch"
    # the body is fine but the ledger's state forbids it
    UNKNOWN_SESSION = "unknown_session"
    SESSION_EXISTS = "session_exists"
    UNKNOWN_CAMERA = "unknown_camera"
    STILL_EXISTS = "still_exists"
    UNKNOWN_STILL = "unknown_still"
    STILL_SESSION_MISMATCH = "still_session_mismatch"
    ASSET_EXISTS = "asset_exists"
    # the same eventId came again with another body: an eventId names one event
    EVENT_ID_REUSED = "event_id_reused"
    # PostgreSQL refused a row the judge accepted (a last line of defence, see services.ingest)
    STORAGE_REFUSED = "storage_refused"


# Rejections that depend on what the ledger already holds: HTTP answers 409 for these.
STATE_REASONS: Final = frozenset(
    {
        Reason.UNKNOWN_SESSION,
        Reason.SESSION_EXISTS,
        Reason.UNKNOWN_CAMERA,
        Reason.STILL_EXISTS,
        Reason.UNKNOWN_STILL,
        Reason.STILL_SESSION_MISMATCH,
        Reason.ASSET_EXISTS,
        Reason.EVENT_ID_REUSED,
    }
)


class Rejection(msgspec.Struct, frozen=True):
    reason: Reason
    detail: str
    field: str | None = None
    # the dead letter whose verdict this one repeats (the same eventId and body came again)
    repeat_of: int | None = None
