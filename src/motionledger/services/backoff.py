"""Waiting between retries: exponential, capped, and cut short by a stop request."""

from __future__ import annotations

import asyncio
import contextlib


class Backoff:
    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self._first, self._cap, self._next = first, cap, first

    def reset(self) -> None:
        self._next = self._first

    async def sleep(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self._next)
        self._next = min(self._cap, self._next * 2)
