"""The one loop every long-running worker of `serve` runs, in the manner of arq's Worker:

    connect to the database
    take the lease, if the worker has one (a second process stands by here)
    work until told to stop
    on a failure: say what kind it was, back off, and start over from the top
    finally: drop the connection (which releases the lease at once)

Only `stop` ends the loop: no failure of a dependency, and no bug, stops a worker for good —
it is said loudly and tried again. What a failure means is decided by its type (see
motionledger.errors): an unavailable dependency is expected and retried quietly, a writer out
of step and anything unexpected are logged as errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import logs, metrics
from ..adapters.postgres import database
from ..adapters.postgres.database import Connection
from ..adapters.postgres.locks import Lock, take_lease, try_lock
from ..errors import BrokerUnavailable, DatabaseUnavailable, OutOfStep, Unavailable
from .backoff import Backoff

log = logs.get(__name__)

Work = Callable[[Connection, asyncio.Event], Awaitable[None]]


@dataclass
class Worker:
    """Runs `work` on a connection of its own, holding `lease` while it works."""

    name: str
    dsn: str
    work: Work
    lease: Lock | None = None
    # told of each failure with its kind ("database", "broker", "lease", "error")
    on_failure: Callable[[str, Exception], None] | None = None
    # told when the worker starts (True) and stops (False) holding its lease and working
    on_active: Callable[[bool], None] | None = None
    # told when it starts (True) and stops (False) waiting for another process's lease
    on_standby: Callable[[bool], None] | None = None
    backoff: Backoff = field(default_factory=Backoff)
    active: bool = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            conn: Connection | None = None
            try:
                conn = await database.connect(self.dsn, timeout=5)
                if self.lease is not None and not await self._lease(conn, self.lease, stop):
                    break
                self._set_active(True)
                await self.work(conn, stop)
            except Exception as error:
                self._failed(error)
                await self.backoff.sleep(stop)
            finally:
                self._set_active(False)
                if conn is not None:
                    database.discard(conn)
        log.info(f"{self.name}_stopped")

    async def _lease(self, conn: Connection, lease: Lock, stop: asyncio.Event) -> bool:
        """Block until this process holds the lease (or is told to stop)."""
        if await try_lock(conn, lease):
            return True
        log.info(f"{self.name}_standby", reason=f"another process holds the {lease.name} lease")
        if self.on_standby is not None:
            self.on_standby(True)
        try:
            return await take_lease(conn, lease, stop)
        finally:
            if self.on_standby is not None:
                self.on_standby(False)

    def _set_active(self, active: bool) -> None:
        if active != self.active:
            self.active = active
            if self.on_active is not None:
                self.on_active(active)
            if active:
                log.info(f"{self.name}_active")

    def _failed(self, error: Exception) -> None:
        kind = failure_kind(error)
        if kind == "database":
            metrics.DATABASE_UP.set(0)
        if self.on_failure is not None:
            self.on_failure(kind, error)
        event = f"{self.name}_{'unavailable' if kind in ('database', 'broker') else 'failed'}"
        if kind in ("database", "broker"):
            log.warning(event, cause=kind, error=str(error) or type(error).__name__)
        elif kind == "lease":
            log.error(event, cause=kind, error=str(error))
        else:
            # a bug, or a failure nobody foresaw: never a reason to stop working for good
            log.exception(event, cause=kind, error=repr(error))


def failure_kind(error: BaseException) -> str:
    """What kind of failure an error is, for logs and metrics."""
    if isinstance(error, DatabaseUnavailable):
        return "database"
    if isinstance(error, BrokerUnavailable):
        return "broker"
    if isinstance(error, Unavailable):
        return "unavailable"
    if isinstance(error, OutOfStep):
        return "lease"
    return "error"
