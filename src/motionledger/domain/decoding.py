"""From raw message bytes to a validated event, or a reason it is not one.

Everything here is pure and runs once per message on the hot path, so the common case
(a valid event) costs one decode and one encode; the classification of failures only runs
for the failures.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from .canonical import canonical_json
from .events import DECODER, EVENT_TYPE_BY_TAG, AnyEvent, Event, subject_for
from .integers import decode_with_integral_floats, is_integral_float_complaint
from .nesting import MAX_JSON_DEPTH, TOO_DEEP, nests_deeper_than
from .reasons import Reason, Rejection


class Decoded(msgspec.Struct, frozen=True):
    """A valid event and its canonical body (the bytes the log stores and hashes)."""

    event: AnyEvent
    body: bytes


# Shorter bodies cannot nest deeper than the limit: the common case skips the count.
SHALLOW_BYTES: Final = 2 * MAX_JSON_DEPTH


class _TypeProbe(msgspec.Struct):
    """Reads only `type`, to tell an unknown type from a bad field of a known one."""

    type: Any = None


_PROBE: Final = msgspec.json.Decoder(_TypeProbe)
# `\u0000` as the encoder writes U+0000: an escape not itself escaped (an even run of
# backslashes before it). The encoder escapes nothing else that way, so this is exact.
_NUL_ESCAPE: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_AT_PATH: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD: Final = re.compile(r"field `(?P<field>[^`]+)`")


def _invalid_field(message: str) -> str:
    """The JSON path a msgspec validation message points at (`$` for the whole body)."""
    at = _AT_PATH.search(message)
    if at is not None and at["path"]:
        return at["path"]
    named = _NAMED_FIELD.search(message)
    return named["field"] if named is not None else "$"


def _classify(raw: bytes, error: msgspec.ValidationError) -> Rejection:
    message = str(error)
    try:
        probe = _PROBE.decode(raw)
    except msgspec.ValidationError:
        return Rejection(Reason.INVALID_EVENT, f"an event is a JSON object: {message}", "$")
    except (msgspec.DecodeError, RecursionError):  # pragma: no cover - raw decoded once already
        return Rejection(Reason.INVALID_JSON, message)
    if not isinstance(probe.type, str) or probe.type not in EVENT_TYPE_BY_TAG:
        shown = "missing" if probe.type is None else repr(probe.type)[:80]
        return Rejection(Reason.UNKNOWN_TYPE, f"unknown event type: {shown}", "type")
    return Rejection(Reason.INVALID_EVENT, message, _invalid_field(message))


def too_large(size: int, limit: int) -> Rejection:
    return Rejection(Reason.TOO_LARGE, f"body is {size} bytes, limit {limit}")


def decode_event(raw: bytes, max_bytes: int) -> Decoded | Rejection:
    """Validate one body against the event union and make its canonical bytes."""
    size = len(raw)
    if size > max_bytes:
        return too_large(size, max_bytes)
    if size > SHALLOW_BYTES and nests_deeper_than(raw):
        return TOO_DEEP  # before decoding: no walk below may meet Python's recursion limit
    try:
        event = DECODER.decode(raw)
    except msgspec.ValidationError as error:
        if not is_integral_float_complaint(error):
            return _classify(raw, error)
        try:  # `1764480000000.0` where an integer goes: JSON Schema calls it an integer
            event = decode_with_integral_floats(raw, AnyEvent)
        except msgspec.ValidationError as again:
            return _classify(raw, again)
    except RecursionError:  # pragma: no cover - the nesting was bounded above
        return TOO_DEEP
    except (msgspec.DecodeError, ValueError) as error:
        return Rejection(Reason.INVALID_JSON, f"not valid JSON: {error}"[:500])
    try:
        body = canonical_json(event)
    except UnicodeEncodeError as error:
        return Rejection(Reason.UNSTORABLE, f"string that is not valid UTF-8: {error}"[:500])
    # PostgreSQL's text and jsonb cannot hold U+0000: screen on the escape, then make sure.
    if b"\\u0000" in body and _NUL_ESCAPE.search(body) is not None:
        return Rejection(Reason.UNSTORABLE, "a string holds \\u0000, which PostgreSQL cannot store")
    return Decoded(event, body)


def check_subject(event: Event, subject: str, root: str) -> Rejection | None:
    """An event travels only on `<root>.<lane>.<sessionId>`."""
    expected = subject_for(root, event)
    if subject == expected:
        return None
    return Rejection(
        Reason.SUBJECT_MISMATCH,
        f"a {event.type_name} event for session {event.session_id} belongs on {expected}, "
        f"not {subject}",
        "sessionId",
    )
