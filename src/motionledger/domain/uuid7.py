"""UUIDv7 (RFC 9562): time-ordered ids for the events and entities the server makes.

48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made within the same
millisecond in order (method 1 of RFC 9562 §6.2), then 62 random bits.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(clock_ms: Callable[[], int] | None = None) -> str:
    """A new UUIDv7 string; ids from one process sort in the order they were made."""
    global _last_ms, _counter
    now = clock_ms() if clock_ms is not None else time.time_ns() // 1_000_000
    with _lock:
        if now > _last_ms:
            _last_ms, _counter = now, int.from_bytes(os.urandom(2), "big") & 0x1FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def timestamp_ms(value: str) -> int:
    """The millisecond a UUIDv7 was made in."""
    return uuid.UUID(value).int >> 80
