"""Noticing a pull that went quiet while the stream still holds more."""

from __future__ import annotations

import time
from typing import Any

from ... import metrics
from ...errors import PullBroken
from . import broker


class StallWatchdog:
    """A pull can stall silently after a broker restart (nats.py #504): when nothing has
    arrived for a while but the stream holds more than is committed, start over."""

    def __init__(
        self, js: Any, stream: str, every_s: float = 2.0, stalled_after_s: float = 6.0
    ) -> None:
        self._js, self._stream = js, stream
        self._every, self._stalled_after = every_s, stalled_after_s
        self._checked = self._progress = time.monotonic()

    def progress(self) -> None:
        self._progress = time.monotonic()

    async def check(self, committed_seq: int, buffered: int, busy: bool) -> None:
        now = time.monotonic()
        if now - self._checked < self._every:
            return
        self._checked = now
        position = await broker.stream_position(self._js, self._stream)
        metrics.CONSUMER_PENDING.set(max(0, position.last_seq - committed_seq))
        if (
            position.last_seq > committed_seq
            and not buffered
            and not busy
            and now - self._progress > self._stalled_after
        ):
            raise PullBroken(f"stalled: stream at {position.last_seq}, committed {committed_seq}")
