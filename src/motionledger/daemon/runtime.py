"""What one `serve` process runs, typed: the connections, the services built on them once
they answer, and the readiness checks /readyz reports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client

from .. import metrics
from ..adapters.nats import broker
from ..adapters.postgres import ledger
from ..adapters.postgres import projections as pg
from ..adapters.postgres.database import Pool, ping
from ..errors import LedgerError, Unavailable
from ..http.live import sse_frame
from ..services.as_of import DerivedReads
from ..services.health import Health
from ..services.ingest import Ingestor
from ..services.live import LiveHub
from ..services.positions import Positions
from ..services.projectors import Projector
from ..services.queries import Queries
from ..services.waiters import Waiters
from ..services.writes import WriteService
from ..settings import Settings

WorkerRun = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Services:
    """The ledger's services on one database and broker connection."""

    ingestor: Ingestor
    projector: Projector
    waiters: Waiters
    queries: Queries
    derived: DerivedReads
    writes: WriteService
    live: LiveHub

    @classmethod
    def build(cls, settings: Settings, pool: Pool, client: Client) -> Services:
        dsn = settings.database_url or ""
        waiters = Waiters(dsn, settings.stream)
        positions = Positions(
            waiters, settings.write_wait_ms, log_head=lambda: ledger.log_head(pool)
        )
        projector = Projector(dsn, on_projected=lambda _: waiters.poke())
        services = cls(
            ingestor=Ingestor(settings, pool, client),
            projector=projector,
            waiters=waiters,
            queries=Queries(pool, positions),
            derived=DerivedReads(pool, positions),
            writes=WriteService(settings, client, waiters, pool),
            live=LiveHub(pool, waiters, render=sse_frame, max_streams=settings.live_max_streams),
        )
        services.ingestor.on_commit = services.on_commit
        return services

    def on_commit(self, head: int) -> None:
        """The in-process ingest committed up to `head`."""
        self.projector.wake(head)
        self.waiters.poke()
        self.live.heard(head)

    @property
    def workers(self) -> list[WorkerRun]:
        return [self.ingestor.run, self.projector.run, self.waiters.run, self.live.run]


@dataclass
class Runtime:
    """Filled in as `serve` comes up: HTTP first, then the database, then the broker."""

    settings: Settings
    health: Health = field(default_factory=Health)
    pool: Pool | None = None
    client: Client | None = None
    services: Services | None = None

    @property
    def ingestor(self) -> Ingestor | None:
        return None if self.services is None else self.services.ingestor

    def queries(self) -> Queries | None:
        return None if self.services is None else self.services.queries

    def derived(self) -> DerivedReads | None:
        return None if self.services is None else self.services.derived

    def writes(self) -> WriteService | None:
        return None if self.services is None else self.services.writes

    def live(self) -> LiveHub | None:
        return None if self.services is None else self.services.live

    def register_checks(self) -> None:
        self.health.register("database", self._database)
        self.health.register("broker", self._broker)
        self.health.register("ingest", self._ingest)
        self.health.register("projections", self.check_projections)

    async def _database(self) -> tuple[bool, object]:
        if self.pool is None:
            return False, "not connected"
        try:
            await ping(self.pool)
        except Unavailable as error:
            metrics.DATABASE_UP.set(0)
            return False, str(error)
        metrics.DATABASE_UP.set(1)
        return True, "up"

    async def _broker(self) -> tuple[bool, object]:
        if self.client is None or not self.client.is_connected:
            return False, "not connected"
        try:
            await broker.round_trip(self.client)
        except Unavailable as error:
            return False, f"not answering: {error}"
        return True, "up"

    async def _ingest(self) -> tuple[bool, object]:
        if self.ingestor is None:
            return False, "not started"
        role = "active" if self.ingestor.active else "standby"
        stall = self.ingestor.stall
        # A stall does not make the process unready: its reads still answer (and say how
        # current they are), and a balancer that drained every replica at once would turn
        # stale reads into none. The stall is an alert (IngestStalled), shown here.
        return True, {
            "role": role,
            "committedSeq": self.ingestor.committed_seq,
            "stalledSeconds": round(stall.seconds, 3),
            "stuckAtSeq": stall.stuck_at_seq,
            "streamLastSeq": stall.stream_last_seq,
            "lastError": stall.last_error,
        }

    async def check_projections(self) -> tuple[bool, object]:
        """Where each projection stands and how far it trails. Never a reason to be unready:
        during a catch-up every replica trails alike, and draining them all would turn
        stale reads into none. Lag is for metrics and alerts; readiness is "can answer"."""
        if self.pool is None:
            return False, "not connected"
        bound_ms = self.settings.ready_max_lag_ms
        try:
            lags = await pg.lag(self.pool)
        except LedgerError as error:  # e.g. the log locked: say so, the reads still answer
            return True, f"unknown: {error}"
        return True, {
            lag.projection: {
                "position": lag.position,
                "lagMs": lag.lag_ms,
                "lagging": lag.lag_ms > bound_ms,
            }
            for lag in lags
        }
