"""Waiting for writes to be decided: one listener per process for every pending request.

A write published on the stream is decided when the ledger has either logged it *and*
projected it (then a read right after sees it), or dead-lettered it. One connection LISTENs
on the ingest's and the projectors' channels (so it hears commits made by any process);
each burst of notifications runs ONE query that settles every pending waiter it can. No
request polls; a slow sweep while waiters are pending only covers notifications missed
while the listener reconnected.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from .. import logs
from ..adapters.postgres import ledger
from ..adapters.postgres.database import DB_DOWN, connect
from ..adapters.postgres.projection_sql import PROJECTED_CHANNEL
from .backoff import Backoff

log = logs.get(__name__)

_KEEP_LISTENING_S: Final = 2.0  # after the last waiter: writes come in bursts

_SETTLE: Final = """
SELECT w.i, e.position, e.position <= s.position AS visible, d.reason, d.detail
  FROM unnest($1::text[], $2::bigint[], $3::text[])
       WITH ORDINALITY AS w(event_id, seq, projection, i)
  LEFT JOIN ledger.events e ON e.event_id = w.event_id
  LEFT JOIN production.projection_state s ON s.projection = w.projection
  LEFT JOIN LATERAL (
        SELECT d.reason, d.detail FROM ledger.dead_letters d
         WHERE d.event_id = w.event_id AND d.stream_seq = w.seq
         ORDER BY d.id DESC LIMIT 1
  ) d ON e.position IS NULL
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the ledger decided one event: logged at `position`, or rejected with `reason`."""

    position: int | None = None
    reason: str | None = None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.position is not None


@dataclass(slots=True)
class _Waiter:
    event_id: str
    seq: int  # the stream sequence it was published at: its dead letter, if any, has it
    projection: str  # the read table that must show it
    future: asyncio.Future[Outcome] = field(repr=False)


class Waiters:
    def __init__(self, dsn: str, *, sweep_s: float = 0.5) -> None:
        self._dsn = dsn
        self._sweep_s = sweep_s
        self._pending: list[_Waiter] = []
        self._signal = asyncio.Event()
        self._backoff = Backoff()
        self.ready = False  # listening: notifications will reach the waiters

    def watch(self, event_id: str, seq: int, projection: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiter(event_id, seq, projection, future))
        self._signal.set()  # it may be decided already
        return future

    def poke(self, *_: object) -> None:
        """Something was committed: settle what can be settled."""
        if self._pending:
            self._signal.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._dsn, timeout=5)
                self.ready = True
                self._backoff.reset()
                await self._serve(conn, stop)
            except DB_DOWN as error:
                log.warning("waiters_database_unavailable", error=str(error) or repr(error))
                self.ready = False
                await self._backoff.sleep(stop)
            except Exception as error:
                log.exception("waiters_failed", error=repr(error))
                self.ready = False
                await self._backoff.sleep(stop)
            finally:
                self.ready = False
                if conn is not None:
                    conn.terminate()
        for waiter in self._pending:
            waiter.future.cancel()
        self._pending.clear()

    async def _serve(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        """Settle on every notification burst. The connection LISTENs only while writes
        wait (and a little after): a busy ledger without HTTP writers would otherwise wake
        this process twice per batch for nothing. A settle always follows a LISTEN, so a
        decision made before it is not missed."""
        self._signal.set()  # settle whatever was registered while reconnecting
        listening, idle_since = False, 0.0
        while not stop.is_set():
            timeout = self._sweep_s if self._pending else 5.0
            waits = {asyncio.ensure_future(self._signal.wait()), asyncio.ensure_future(stop.wait())}
            try:
                await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
            finally:
                for waiting in waits:
                    waiting.cancel()
            self._signal.clear()
            if conn.is_closed():
                raise ConnectionError("listener connection closed")
            now = time.monotonic()
            if self._pending and not listening:
                await conn.add_listener(ledger.LOG_CHANNEL, self.poke)
                await conn.add_listener(PROJECTED_CHANNEL, self.poke)
                listening = True
            if self._pending:
                await self._settle(conn)
                idle_since = now
            elif listening and now - idle_since > _KEEP_LISTENING_S:
                await conn.remove_listener(ledger.LOG_CHANNEL, self.poke)
                await conn.remove_listener(PROJECTED_CHANNEL, self.poke)
                listening = False

    async def _settle(self, conn: asyncpg.Connection) -> None:
        self._pending = [w for w in self._pending if not w.future.done()]  # timed out: gone
        waiting = list(self._pending)
        if not waiting:
            return
        rows = await conn.fetch(
            _SETTLE,
            [w.event_id for w in waiting],
            [w.seq for w in waiting],
            [w.projection for w in waiting],
        )
        settled: set[int] = set()
        for index, position, visible, reason, detail in rows:
            waiter = waiting[index - 1]
            if waiter.future.done():
                settled.add(index - 1)
            elif reason is not None:
                waiter.future.set_result(Outcome(reason=reason, detail=detail))
                settled.add(index - 1)
            elif position is not None and visible:
                waiter.future.set_result(Outcome(position=position))
                settled.add(index - 1)
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
