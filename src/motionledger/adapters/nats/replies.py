"""What a JetStream pull delivers besides the messages themselves, read from raw bytes.

Pure functions over the protocol's bytes, so they are tested from byte fixtures: the ack
subject a message arrives with (where it sits in the stream), and the status a pull request
ends with (no message carries one of those).
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

STATUS_OFFSET: Final = len(b"NATS/1.0 ")  # a status header block starts "NATS/1.0 <code>"


class Delivery(NamedTuple):
    """Where a delivered message sits, from its ack subject."""

    stream_seq: int
    published_ns: int  # the broker's timestamp
    pending: int  # messages the consumer still holds beyond this one


def parse_ack_subject(reply: bytes) -> Delivery:
    """`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or
    the 12-token form with a domain and an account hash after `ACK` (and a trailing token
    newer servers may add). Raises ValueError for anything else."""
    tokens = reply.split(b".")
    if len(tokens) == 9:
        base = 2
    elif len(tokens) >= 11 and tokens[0] == b"$JS" and tokens[1] == b"ACK":
        base = 4
    else:
        raise ValueError(f"not a JetStream ack subject: {reply[:120]!r}")
    return Delivery(int(tokens[base + 3]), int(tokens[base + 5]), int(tokens[base + 6]))


class StatusKind(enum.Enum):
    HEARTBEAT = "heartbeat"  # 100: the pull is alive
    ENDED = "ended"  # 404 / 408, or 409 "Exceeded ...": the request is over, owes nothing more
    BROKEN = "broken"  # anything else (409 consumer deleted, ...): start over


class Status(NamedTuple):
    kind: StatusKind
    code: str
    description: str
    # messages the ended request did not deliver (Nats-Pending-Messages), None if not said
    undelivered: int | None = None


def parse_status(headers: bytes) -> Status:
    """The status header block of a message without a reply subject."""
    first, _, rest = headers.partition(b"\r\n")
    code = first[STATUS_OFFSET : STATUS_OFFSET + 3].decode("ascii", "replace")
    description = first[STATUS_OFFSET + 3 :].strip().decode("utf-8", "replace")
    if code == "100":
        return Status(StatusKind.HEARTBEAT, code, description)
    if code in ("404", "408"):
        for line in rest.split(b"\r\n"):
            if line.startswith(b"Nats-Pending-Messages:"):
                pending = int(line.split(b":", 1)[1])
                return Status(StatusKind.ENDED, code, description, pending)
        return Status(StatusKind.ENDED, code, description)
    if code == "409" and "Exceeded" in description:  # e.g. max waiting / max bytes
        return Status(StatusKind.ENDED, code, description)
    return Status(StatusKind.BROKEN, code, description)
