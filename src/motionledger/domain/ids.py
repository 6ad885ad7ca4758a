"""Time-ordered ids for events and entities: UUIDv7 (RFC 9562), as text.

`uuid7()` is monotonic within a process: ids made in the same millisecond count up in
the 12-bit `rand_a` field (RFC 9562 §6.2, method 1), so a producer's ids sort in the
order it made them. `uuid7_from()` builds one from given parts, for deterministic
generators (the shoot simulator) that draw the random bits from a seeded source.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

_VERSION: Final = 0x7
_VARIANT: Final = 0b10
_MAX_MS: Final = (1 << 48) - 1
_MAX_COUNTER: Final = (1 << 12) - 1

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7_from(ms: int, rand_a: int, rand_b: int) -> str:
    """A UUIDv7 string from a 48-bit epoch-ms time, 12 bits `rand_a`, 62 bits `rand_b`."""
    value = (
        (ms & _MAX_MS) << 80
        | _VERSION << 76
        | (rand_a & _MAX_COUNTER) << 64
        | _VARIANT << 62
        | (rand_b & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def uuid7() -> str:
    """A new UUIDv7: time-ordered, unique, and increasing within this process."""
    global _last_ms, _counter
    random = int.from_bytes(os.urandom(10), "big")
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            # start each millisecond low in the counter's range, leaving room to count up
            _last_ms, _counter = now, (random >> 62) & 0x1FF
        else:
            _counter += 1
            if _counter > _MAX_COUNTER:  # 4096 ids in one ms: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    return uuid7_from(ms, counter, random)


def uuid7_time_ms(value: str) -> int:
    """The epoch milliseconds a UUIDv7 carries."""
    return int(value.replace("-", "")[:12], 16)
