"""Following sessions as they happen: the live hub, one per process.

A follower wants every event of one session after a log position, each once, in log order,
then the new ones as they are committed. Two ways deliver them, and a follower is always in
exactly one:

- behind: it reads its session's log rows itself, page by page up to `fetched` (the
  position the hub has fanned out to), at its own pace;
- live: its position is at least where the hub's next fetch starts, so the hub hands it its
  session's rows of each fetch.

The hub is fanned out to from the commits: the process's one database listener
(services.waiters) and the in-process ingest tell it each new log head; one query per
commit burst then reads the new rows of every followed session, each rendered once and
handed to that session's live followers. Nothing polls per follower; a slow sweep while
anyone follows covers notices missed while the listener reconnected.

A follower is never waited for: the hub only appends to its queue. One more than
`max_behind` events queued and it is closed (it resumes from the last id it got), so a
slow client neither slows the ledger nor grows the process's memory. Stopping the hub
closes every follower.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from .. import logs, metrics
from ..adapters.postgres import live as sql
from ..adapters.postgres.database import Pool
from ..adapters.postgres.live import LoggedEvent
from ..errors import NotFound, Unavailable
from .backoff import Backoff
from .waiters import Waiters

log = logs.get(__name__)

MAX_BEHIND: Final = 10_000  # queued events past which a follower is closed (the contract's)
PAGE: Final = 1000  # log rows per query, fan-out and catch-up alike
# At most one fan-out query per PACE_S: at live rates each ingest commit would otherwise be
# a query of its own; a short pause folds a few commits into one.
PACE_S: Final = 0.003
SWEEP_S: Final = 2.0  # while anyone follows: a fetch at least this often, notices or not
KEEP_ALIVE_S: Final = 10.0  # an idle follower is told so this often (the contract: 15 s)

Render = Callable[[LoggedEvent], bytes]  # an event as a follower is sent it: once per event


class Follower:
    """One client following one session. `chunks()` yields what to send it."""

    def __init__(self, hub: LiveHub, session_id: str, after: int) -> None:
        self.session_id = session_id
        self.cursor = after  # every event of the session up to here is queued or sent
        self.closed: str | None = None  # why the hub closed it: "lagging" or "stopping"
        self._hub = hub
        self._queue: list[bytes] = []
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def push(self, frames: list[bytes], through: int) -> None:
        """(The hub) the session's events up to `through` are these, after `cursor`."""
        if frames:
            if len(self._queue) + len(frames) > self._hub.max_behind:
                self._hub.drop(self)
                return
            self._queue.extend(frames)
            self._ready.set()
        self.cursor = max(self.cursor, through)

    def wake(self) -> None:
        self._ready.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._queue = []
        self._ready.set()
        self._closed.set()

    async def until_closed(self) -> None:
        """Return once the hub has closed this follower."""
        await self._closed.wait()

    def leave(self) -> None:
        """The client is gone: forget it."""
        self._hub.remove(self)

    async def chunks(self) -> AsyncIterator[bytes | None]:
        """Bursts of rendered events, each to be sent as one write; None after the hub's
        `keep_alive_s` without any (a keep-alive is due). Ends when the hub closes it."""
        hub = self._hub
        while self.closed is None:
            if self._queue:
                frames, self._queue = self._queue, []
                yield b"".join(frames)
                metrics.LIVE_EVENTS_SENT.inc(len(frames))
                continue
            if self.cursor < hub.fetched:
                frames, through = await hub.catch_up(self.session_id, self.cursor)
                self.cursor = max(self.cursor, through)
                if frames and self.closed is None:
                    yield b"".join(frames)
                    metrics.LIVE_EVENTS_SENT.inc(len(frames))
                continue
            self._ready.clear()
            if self._queue or self.closed is not None or self.cursor < hub.fetched:
                continue
            try:
                await asyncio.wait_for(self._ready.wait(), hub.keep_alive_s)
            except TimeoutError:
                yield None


class LiveHub:
    """The process's followers, by session, fed from the log's commits."""

    def __init__(
        self,
        pool: Pool,
        waiters: Waiters,
        *,
        render: Render,
        max_streams: int,
        max_behind: int = MAX_BEHIND,
        page: int = PAGE,
    ) -> None:
        self._pool = pool
        self._waiters = waiters
        self._render = render
        self.max_streams = max_streams
        self.max_behind = max_behind
        self.keep_alive_s = KEEP_ALIVE_S
        self._page = page
        self._by_session: dict[str, list[Follower]] = {}
        self._count = 0
        self.fetched = 0  # every followed session's events up to here are fanned out
        self._head = 0  # the highest log head heard of
        self._known = False  # `fetched` is current: false until the log's head is read
        self._running = False
        self._wake = asyncio.Event()
        waiters.follow_log(self)

    # -- told by the listener and the in-process ingest ---------------------------------------
    @property
    def wants_notices(self) -> bool:
        return self._count > 0

    def heard(self, head: int | None) -> None:
        """The log's head is `head` now (None: it may have moved unheard: look)."""
        if head is None:
            self._wake.set()
            return
        if head > self._head:
            self._head = head
            if self._count == 0 and self._known:
                self.fetched = max(self.fetched, head)  # nobody to hand the rows to
            else:
                self._wake.set()

    # -- followers -----------------------------------------------------------------------
    async def follow(self, session_id: str, after: int) -> Follower:
        """A follower of `session_id` from just after log position `after`."""
        self._check_room()
        if not await sql.session_started(self._pool, session_id):
            raise NotFound(f"session {session_id} is unknown")
        self._check_room()
        if self._count == 0:
            self._known = False  # nobody listened meanwhile: read the head again
        follower = Follower(self, session_id, after)
        self._by_session.setdefault(session_id, []).append(follower)
        self._count += 1
        metrics.LIVE_STREAMS_OPEN.inc()
        self._waiters.listen_now()
        self._wake.set()
        return follower

    def _check_room(self) -> None:
        if not self._running:
            raise Unavailable("live streams are not up (starting or stopping)")
        if self._count >= self.max_streams:
            raise Unavailable(
                f"{self._count} live streams are open, the most this process serves "
                "(MOTIONLEDGER_LIVE_MAX_STREAMS); try again later or another process"
            )

    def remove(self, follower: Follower) -> None:
        followers = self._by_session.get(follower.session_id)
        if followers is None or follower not in followers:
            return
        followers.remove(follower)
        if not followers:
            del self._by_session[follower.session_id]
        self._count -= 1
        metrics.LIVE_STREAMS_OPEN.dec()

    def drop(self, follower: Follower) -> None:
        """Too far behind: closed (it resumes by the last id it got)."""
        log.info(
            "live_follower_dropped",
            session_id=follower.session_id,
            position=follower.cursor,
            queued=follower.queued,
            bound=self.max_behind,
        )
        metrics.LIVE_CLIENTS_DROPPED.inc()
        follower.close("lagging")
        self.remove(follower)

    async def catch_up(self, session_id: str, after: int) -> tuple[list[bytes], int]:
        """A page of the session's events after `after` from the log, up to what the hub
        has fanned out: (rendered events, the position they bring the follower to)."""
        upto = self.fetched
        rows = await sql.session_events(self._pool, session_id, after, upto, self._page)
        through = rows[-1].position if len(rows) >= self._page else upto
        return [self._render(row) for row in rows], through

    # -- the worker ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Fan out every commit burst until stopped; then close every follower."""
        backoff = Backoff()
        self._running = True
        try:
            while not stop.is_set():
                try:
                    await self._cycle(stop)
                    backoff.reset()
                except Unavailable as error:
                    log.warning("live_unavailable", error=str(error) or type(error).__name__)
                    await backoff.sleep(stop)
                except Exception as error:  # a bug: said loudly, never a reason to stop for good
                    log.exception("live_failed", error=repr(error))
                    await backoff.sleep(stop)
        finally:
            self._running = False
            for followers in list(self._by_session.values()):
                for follower in list(followers):
                    follower.close("stopping")
                    self.remove(follower)
            log.info("live_stopped")

    async def _cycle(self, stop: asyncio.Event) -> None:
        if not self._known:
            head = await sql.head(self._pool)
            self._head = max(self._head, head)
            self.fetched = max(self.fetched, head)  # the followers behind it read the log
            self._known = True
            self._wake_all()
        waits = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            timeout = SWEEP_S if self._count else None
            await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for waiting in waits:
                waiting.cancel()
        if stop.is_set() or not self._known:
            return
        self._wake.clear()
        started = time.monotonic()
        await self._fan_out()
        pause = started + PACE_S - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)

    def _wake_all(self) -> None:
        for followers in self._by_session.values():
            for follower in followers:
                follower.wake()

    async def _fan_out(self) -> None:
        """One query per page of new rows; each follower handed its session's."""
        while self._count:
            sessions = set(self._by_session)
            start = self.fetched
            head, rows = await sql.new_events(self._pool, list(sessions), start, self._page)
            full = len(rows) >= self._page
            through = rows[-1].position if full else max(head, start)
            self._hand_out(sessions, start, through, rows)
            self._head = max(self._head, head)
            self.fetched = max(self.fetched, through)
            if not full:
                return
        self.fetched = max(self.fetched, self._head)

    def _hand_out(
        self, sessions: set[str], start: int, through: int, rows: list[LoggedEvent]
    ) -> None:
        """Synchronously (no follower can come or go meanwhile): the rows of (start,
        through] to the followers that have everything up to `start`; the others are
        behind and read the log themselves."""
        rendered: dict[str, list[tuple[int, bytes]]] = {}
        for row in rows:
            rendered.setdefault(row.session_id, []).append((row.position, self._render(row)))
        for session_id, followers in list(self._by_session.items()):
            mine = rendered.get(session_id, [])
            for follower in list(followers):
                if session_id in sessions and follower.cursor >= start:
                    cursor = follower.cursor
                    follower.push([frame for p, frame in mine if p > cursor], through)
                elif follower.cursor < through:
                    follower.wake()
