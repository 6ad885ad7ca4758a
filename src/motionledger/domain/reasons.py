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
    # handling the message failed in a way that would fail again: its bytes meet a bug
    UNPROCESSABLE = "unprocessable"


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


_DETAIL_CHARS: Final = 500


def unprocessable(step: str, error: Exception) -> Rejection:
    """The verdict on a message whose handling raised: what failed, and how, in storable
    text (the error may quote anything: lone surrogates and NUL are escaped)."""
    try:
        said = f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose __str__ fails too
        said = type(error).__name__
    detail = f"{step} failed: {said}"[:_DETAIL_CHARS]
    text = detail.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return Rejection(Reason.UNPROCESSABLE, text)
