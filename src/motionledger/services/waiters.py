"""Waiting for the ledger: the process's one database listener, for every pending request.

A write published on the stream is decided when the ledger has either logged it *and*
projected it (then a read right after sees it), or dead-lettered it. A read given
`minPosition` waits for the read tables to reach a log position. One connection LISTENs
on the ingest's and the projectors' channels (so it hears commits made by any process);
each burst of notifications runs ONE query per kind of wait that settles every pending
waiter it can. No request polls; a slow sweep while waiters are pending only covers
notifications missed while the listener reconnected.

The same listener tells the log's followers (the live hub, services.live) of every new
log head, while they want to hear of it: one listener per process, whatever listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from .. import logs
from ..adapters.postgres.database import Connection, is_open
from ..adapters.postgres.decisions import (
    Awaited,
    Decision,
    committed_seq,
    decisions,
    listen,
    projected_position,
    unlisten,
)
from ..adapters.postgres.ledger import LOG_CHANNEL
from ..domain.events import Event
from ..errors import DatabaseUnavailable
from .worker import Worker

log = logs.get(__name__)

_KEEP_LISTENING_S: Final = 2.0  # after the last waiter: writes come in bursts


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the ledger decided one event: logged at `position`, or rejected with `reason`.
    `event`: the event as the log has it, when a retried write named one judged before."""

    position: int | None = None
    reason: str | None = None
    detail: str | None = None
    event: Event | None = None
    # the log row is another copy's: this one was judged a duplicate of it (the writer
    # holds that copy to its own request)
    other_copy: bool = False

    @property
    def accepted(self) -> bool:
        return self.position is not None


class LogFollower(Protocol):
    """Told of new log heads by the listener while it wants them (the live hub)."""

    @property
    def wants_notices(self) -> bool: ...

    def heard(self, head: int | None) -> None:
        """The log's head is now `head`; None: notices may have been missed (the listener
        just started listening), find the head another way."""


def _outcome(decision: Decision) -> Outcome | None:
    """This copy's verdict, once there is one to answer with (None: not yet)."""
    if decision.reason is not None:  # its own dead letter
        return Outcome(reason=decision.reason, detail=decision.detail)
    if decision.position is None or not decision.visible:
        return None
    if not decision.other_copy:
        return Outcome(position=decision.position)
    if decision.judged:  # no dead letter of its own once judged: a duplicate of that copy
        return Outcome(position=decision.position, other_copy=True)
    return None  # another copy is logged; this one is still to be judged


@dataclass(slots=True)
class _Waiter:
    awaited: Awaited
    future: asyncio.Future[Outcome] = field(repr=False)


class Waiters:
    def __init__(self, dsn: str, stream: str, *, sweep_s: float = 0.5) -> None:
        self._sweep_s = sweep_s
        self._stream = stream
        self._pending: list[_Waiter] = []
        self._judging: list[tuple[int, asyncio.Future[None]]] = []  # (stream seq, judged)
        self._projected: list[tuple[int, asyncio.Future[None]]] = []  # (log position, reached)
        self._followers: list[LogFollower] = []
        self._signal = asyncio.Event()
        self._worker = Worker("waiters", dsn, self._serve)

    @property
    def ready(self) -> bool:
        """Connected: notifications will reach the waiters."""
        return self._worker.active

    def watch(self, event_id: str, seq: int, projection: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiter(Awaited(event_id, seq, projection), future))
        self._signal.set()  # it may be decided already
        return future

    def until_judged(self, stream_seq: int) -> asyncio.Future[None]:
        """Done once the ledger has judged the stream up to `stream_seq`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._judging.append((stream_seq, future))
        self._signal.set()
        return future

    def until_projected(self, position: int) -> asyncio.Future[None]:
        """Done once every read table has reached log position `position`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._projected.append((position, future))
        self._signal.set()
        return future

    def follow_log(self, follower: LogFollower) -> None:
        """Tell `follower` of every new log head while it `wants_notices`."""
        self._followers.append(follower)

    def listen_now(self) -> None:
        """A follower wants notices now (the listener starts listening if it was not)."""
        self._signal.set()

    @property
    def _waiting(self) -> bool:
        return bool(self._pending or self._judging or self._projected)

    @property
    def _following(self) -> bool:
        return any(f.wants_notices for f in self._followers)

    def poke(self, *_: object) -> None:
        """Something was committed: settle what can be settled."""
        if self._waiting:
            self._signal.set()

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == LOG_CHANNEL and self._followers:
            with contextlib.suppress(ValueError):
                head = int(payload)
                for follower in self._followers:
                    follower.heard(head)
        self.poke()

    async def run(self, stop: asyncio.Event) -> None:
        await self._worker.run(stop)
        for waiter in self._pending:
            waiter.future.cancel()
        for _, future in (*self._judging, *self._projected):
            future.cancel()
        self._pending.clear()
        self._judging.clear()
        self._projected.clear()

    async def _serve(self, conn: Connection, stop: asyncio.Event) -> None:
        """Settle on every notification burst. The connection LISTENs only while something
        waits or follows the log (and a little after): a busy ledger without HTTP clients
        would otherwise wake this process twice per batch for nothing. A settle always
        follows a LISTEN, so a decision made before it is not missed; followers are told
        to look for themselves."""
        self._worker.backoff.reset()
        self._signal.set()  # settle whatever was registered while reconnecting
        listening, idle_since = False, 0.0
        while not stop.is_set():
            timeout = self._sweep_s if self._waiting else 5.0
            waits = {asyncio.ensure_future(self._signal.wait()), asyncio.ensure_future(stop.wait())}
            try:
                await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
            finally:
                for waiting in waits:
                    waiting.cancel()
            self._signal.clear()
            if not is_open(conn):
                raise DatabaseUnavailable("listener connection closed")
            now = time.monotonic()
            wanted = self._waiting or self._following
            if wanted and not listening:
                await listen(conn, self._notified)
                listening = True
                for follower in self._followers:
                    follower.heard(None)
            if wanted:
                idle_since = now
            if self._waiting:
                await self._settle(conn)
            elif listening and now - idle_since > _KEEP_LISTENING_S:
                await unlisten(conn, self._notified)
                listening = False

    async def _settle(self, conn: Connection) -> None:
        self._judging = [(seq, f) for seq, f in self._judging if not f.done()]
        if self._judging:
            committed = await committed_seq(conn, self._stream)
            for seq, future in self._judging:
                if seq <= committed:
                    future.set_result(None)
        self._projected = [(p, f) for p, f in self._projected if not f.done()]
        if self._projected:
            reached = await projected_position(conn)
            for awaited, future in self._projected:
                if awaited <= reached:
                    future.set_result(None)
        self._pending = [w for w in self._pending if not w.future.done()]  # timed out: gone
        waiting = list(self._pending)
        if not waiting:
            return
        settled: set[int] = set()
        for decision in await decisions(conn, self._stream, [w.awaited for w in waiting]):
            waiter = waiting[decision.asked]
            outcome = _outcome(decision)
            if waiter.future.done():
                settled.add(decision.asked)
            elif outcome is not None:
                waiter.future.set_result(outcome)
                settled.add(decision.asked)
        done = {id(waiting[i]) for i in settled}
        self._pending = [w for w in self._pending if id(w) not in done]

    async def wait_all(
        self, futures: list[asyncio.Future[Outcome]], timeout_s: float
    ) -> list[Outcome | None]:
        """Outcomes in order; None for those still undecided after `timeout_s`."""
        if futures:
            await asyncio.wait(futures, timeout=timeout_s)
        out: list[Outcome | None] = []
        for future in futures:
            if future.done() and not future.cancelled():
                out.append(future.result())
            else:
                future.cancel()
                out.append(None)
        return out
