"""A stall is loud: how long commits have stopped while the stream holds unjudged messages.

Whatever stops commits — a lock a migration holds, a full disk, a database that is gone, a
bug that restarts the batch forever — the ingest loop itself may be the thing that is
blocked, so the watch runs beside it, on its own task: it asks the broker how far the stream
goes (a cheap JetStream API call, independent of the database), compares that with the last
commit, and reports the stall's age as a gauge, in /readyz, and in a log line every
LOG_EVERY_S while it lasts. A process that stands by (another one holds the writer lease)
reports no stall: the active one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from .. import logs
from ..errors import Unavailable

log = logs.get(__name__)

LOG_EVERY_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class StallReport:
    seconds: float  # 0: not stalled
    stuck_at_seq: int | None  # the next stream sequence to commit, while stalled
    stream_last_seq: int | None  # as the broker said last
    last_error: str | None  # the last failure the ingest loop met


@dataclass
class IngestProgress:
    """What the ingest loop tells the watch: it is written by the loop, read by the watch."""

    committed_seq: int = 0
    last_commit: float = 0.0  # time.monotonic() of the last commit (or of the start)
    last_error: str | None = None
    standing_by: bool = False  # another process holds the writer lease

    def committed(self, seq: int, at: float | None = None) -> None:
        self.committed_seq = seq
        self.last_commit = time.monotonic() if at is None else at
        self.last_error = None


class StallWatch:
    def __init__(
        self,
        progress: IngestProgress,
        stream_last_seq: Callable[[], Awaitable[int]],
        report: Callable[[float], None],
        *,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress = progress
        self._stream_last_seq = stream_last_seq
        self._report = report
        self._every_s = every_s
        self._clock = clock
        self._last_seq: int | None = None
        self._waiting_since: float | None = None  # when unjudged messages were first seen
        self._logged = 0.0
        self.current = StallReport(0.0, None, None, None)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every_s)
        self._report(0.0)

    async def check(self) -> StallReport:
        progress = self._progress
        # the broker not answering: keep what it said last, the stall goes on being measured
        with contextlib.suppress(Unavailable):
            self._last_seq = await self._stream_last_seq()
        now = self._clock()
        waiting = (
            not progress.standing_by
            and self._last_seq is not None
            and self._last_seq > progress.committed_seq
        )
        if not waiting:
            self._waiting_since = None
            self.current = StallReport(0.0, None, self._last_seq, progress.last_error)
        else:
            if self._waiting_since is None:
                self._waiting_since = now  # first seen waiting (at most one check late)
            # they wait since the last commit, or since they were first seen, if later
            seconds = now - max(self._waiting_since, progress.last_commit)
            self.current = StallReport(
                seconds, progress.committed_seq + 1, self._last_seq, progress.last_error
            )
        self._report(self.current.seconds)
        self._say(now)
        return self.current

    def _say(self, now: float) -> None:
        report = self.current
        if report.seconds < LOG_EVERY_S or now - self._logged < LOG_EVERY_S:
            return
        self._logged = now
        log.warning(
            "ingest_stalled",
            stalled_s=round(report.seconds, 1),
            stuck_at_seq=report.stuck_at_seq,
            stream_last_seq=report.stream_last_seq,
            last_error=report.last_error,
        )
