"""The projections and the query endpoint's services, wired into `serve`.

`attach` builds them on the daemon's resources once the database and broker are up: the
projector (woken by the in-process ingest as well as by NOTIFY), the shared write waiters,
the write and read services, and a readiness check that fails when a projection trails
the log by more than `ready_max_lag_ms`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
from nats.aio.client import Client

from ..adapters.postgres import projections as pg
from ..settings import Settings
from .health import Health
from .projectors import Projector
from .queries import Queries
from .waiters import Waiters
from .writes import WriteService, still_session

if TYPE_CHECKING:
    from .daemon import Resources


@dataclass
class Production:
    projector: Projector
    waiters: Waiters
    writes: WriteService
    queries: Queries
    pool: asyncpg.Pool

    def on_commit(self, head: int) -> None:
        """The in-process ingest committed up to `head`."""
        self.projector.wake(head)
        self.waiters.poke()

    async def still_session(self, still_id: str) -> str | None:
        return await still_session(self.pool, still_id)

    @property
    def workers(self) -> list[Callable[[asyncio.Event], Awaitable[None]]]:
        return [self.projector.run, self.waiters.run]


def build(settings: Settings, pool: asyncpg.Pool, client: Client) -> Production:
    assert settings.database_url is not None
    waiters = Waiters(settings.database_url)
    projector = Projector(settings.database_url, on_projected=lambda _: waiters.poke())
    return Production(
        projector=projector,
        waiters=waiters,
        writes=WriteService(settings, client, waiters),
        queries=Queries(pool),
        pool=pool,
    )


def register_checks(health: Health, settings: Settings, get_pool: Callable[[], Any]) -> None:
    bound_ms = settings.ready_max_lag_ms

    async def projections() -> tuple[bool, Any]:
        pool = get_pool()
        if pool is None:
            return False, "not connected"
        rows = await pg.lag(pool)
        detail = {
            row["projection"]: {"position": row["position"], "lagMs": row["lag_ms"]} for row in rows
        }
        lagging = [name for name, d in detail.items() if d["lagMs"] > bound_ms]
        return not lagging, detail

    health.register("projections", projections)


def attach(res: Resources) -> Production:
    """Build the services on `res`, register their readiness, and queue their workers."""
    assert res.pool is not None
    assert res.client is not None
    built = build(res.settings, res.pool, res.client)
    res.production = built
    res.extras.setdefault("workers", []).extend(built.workers)
    return built
