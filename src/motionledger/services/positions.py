"""Reads at a log position: `minPosition`, and the asOf reads' wait for the read tables.

Every read answers with a position p (`Ledger-Position`): its answer reflects every event
at or below p. p is read by the read's own statement, from the read tables' checkpoints in
PostgreSQL, never from this process's memory — so a client may write through one `serve`
and read through another, passing the write's position as `minPosition`.

A read asked for at least n whose tables are behind waits until they reach n, then reads
again. The wait is event-driven: the process's one listener (services.waiters) settles
every such wait on the projector's notifications, with one query per burst. Past the
write wait budget the read is NotCaughtUp (503 `not_caught_up`, with Retry-After).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

from ..errors import NotCaughtUp, NotFound
from .waiters import Waiters

Answer = tuple[bytes, int]  # the JSON of `result`, and the position it reflects
Attempt = Callable[[], Awaitable[Answer]]


class Positions:
    """Waits for the read tables to reach a log position, within the write wait budget
    (without `waiters`, never: a read behind its position fails at once)."""

    def __init__(
        self,
        waiters: Waiters | None = None,
        wait_ms: int = 0,
        log_head: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._waiters = waiters
        self._budget_s = wait_ms / 1000
        self._log_head = log_head

    async def _known(self, position: int) -> None:
        """A position beyond the log is none this ledger handed out (a write answers only
        once its event is logged, a read only with what its tables reflect): NotFound at
        once, rather than a wait for what will not come."""
        if self._log_head is None:
            return
        head = await self._log_head()
        if position > head:
            raise NotFound(
                f"position {position} is beyond the log (it ends at {head}): not a "
                "Ledger-Position this ledger answered"
            )

    def deadline(self) -> float:
        """When a wait that starts now gives up."""
        return time.monotonic() + self._budget_s

    async def reached(self, position: int, deadline: float, behind_at: int = 0) -> None:
        """Return once every read table has reached `position`; NotCaughtUp past
        `deadline` (`behind_at`: where the tables stood, for the message)."""
        left = deadline - time.monotonic()
        if self._waiters is None or left <= 0:
            raise NotCaughtUp(position, behind_at)
        try:
            await asyncio.wait_for(self._waiters.until_projected(position), left)
        except TimeoutError:
            raise NotCaughtUp(position, behind_at) from None

    async def at_least(
        self, min_position: int | None, attempt: Attempt, *, as_of: bool = False
    ) -> Answer:
        """`attempt`'s answer, once it reflects every event up to `min_position`.

        An asOf answer stands for the position its time fixes, P. Once the read tables
        have reached n, the log holds every event up to n, and those logged after P were
        recorded after asOf: the answer reflects every event up to max(P, n)."""
        if min_position is None:
            return await attempt()
        deadline = self.deadline()
        if as_of:
            await self._known(min_position)
            await self.reached(min_position, deadline)
            body, position = await attempt()
            return body, max(position, min_position)
        body, position = await attempt()
        if position < min_position:
            await self._known(min_position)
            await self.reached(min_position, deadline, position)
            body, position = await attempt()
            if position < min_position:  # tables only move forward; never answer short
                raise NotCaughtUp(min_position, position)
        return body, position


NO_WAIT: Final = Positions()  # reads that never wait (tools, tests)
