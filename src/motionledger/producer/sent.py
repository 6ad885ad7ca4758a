"""What this producer sent, by eventId: to tell a retry's duplicate from a reused eventId.

Within its duplicate window JetStream drops a second message with the same Nats-Msg-Id
whatever its body, and answers "duplicate". The ledger never sees the dropped copy, so only
the sender can notice that the body differed — and only for copies it sent itself, in this
process, within the memory kept here. A duplicate of anything else is acknowledged as
`unverified` (see `Ack`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Literal

Prior = Literal["same", "different", "unknown"]


class SentBodies:
    """Digests of the bodies sent, by eventId, kept for `keep_s` seconds (at most `limit`)."""

    def __init__(self, keep_s: float = 300.0, limit: int = 500_000) -> None:
        self._keep_s = keep_s
        self._limit = limit
        self._digests: dict[str, tuple[bytes, float]] = {}  # insertion order = send order

    def __len__(self) -> int:
        return len(self._digests)

    def record(self, event_id: str, body: bytes) -> Prior:
        """Remember `body` as sent under `event_id`; say how it compares with an earlier one."""
        digest = hashlib.blake2b(body, digest_size=16).digest()
        now = time.monotonic()
        earlier = self._digests.pop(event_id, None)
        self._digests[event_id] = (digest, now)
        self._forget(now)
        if earlier is None:
            return "unknown"
        return "same" if earlier[0] == digest else "different"

    def _forget(self, now: float) -> None:
        horizon = now - self._keep_s
        while self._digests:
            oldest = next(iter(self._digests))
            if len(self._digests) <= self._limit and self._digests[oldest][1] >= horizon:
                return
            del self._digests[oldest]
