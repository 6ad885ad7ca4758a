"""`motionledger serve`: ingestion, projections and the query endpoint in one process.

Start-up never requires the broker or the database to be there already: the HTTP
endpoint comes up first (so /healthz answers and /readyz tells the truth), then the
database and broker are connected with retries. Ctrl-C / SIGTERM stops fetching, lets the
batch in flight commit, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import uvicorn
from nats.aio.client import Client
from nats.errors import Error as NatsError

from .. import logs, metrics
from ..adapters.http.app import create_app
from ..adapters.nats import broker
from ..adapters.postgres.database import DB_DOWN, create_pool, migrate
from ..settings import Settings
from .backoff import Backoff
from .health import Health
from .ingest import Ingestor
from .production import Production
from .production import attach as attach_production
from .production import register_checks as register_production_checks

log = logs.get(__name__)
T = TypeVar("T")
DRAIN_DEADLINE_S = 15.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass


async def retry(what: str, attempt: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T | None:
    """Keep trying until it works or we are told to stop (then None)."""
    backoff = Backoff(first=0.2, cap=3.0)
    while not stop.is_set():
        try:
            return await attempt()
        except Exception as error:
            log.warning("waiting_for", what=what, error=str(error) or type(error).__name__)
            await backoff.sleep(stop)
    return None


@dataclass
class Resources:
    """What the HTTP routes and services share; filled in as the connections come up."""

    settings: Settings
    health: Health = field(default_factory=Health)
    pool: asyncpg.Pool | None = None
    client: Client | None = None
    ingestor: Ingestor | None = None
    production: Production | None = None  # projector, write waiters, read and write services
    extras: dict[str, Any] = field(default_factory=dict)


def _register_checks(res: Resources) -> None:
    async def database() -> tuple[bool, Any]:
        if res.pool is None:
            return False, "not connected"
        try:
            await res.pool.fetchval("SELECT 1")
        except DB_DOWN as error:
            metrics.DATABASE_UP.set(0)
            return False, str(error) or type(error).__name__
        metrics.DATABASE_UP.set(1)
        return True, "up"

    async def broker_check() -> tuple[bool, Any]:
        client = res.client
        if client is None or not client.is_connected:
            return False, "not connected"
        try:
            # A round trip, not the socket's state: a frozen or partitioned server keeps the
            # connection open while answering nothing, for up to two ping intervals. A
            # request, not flush(): a timed-out flush leaves its cancelled future queued in
            # nats-py, and the late PONG then breaks the client's read loop (a reconnect).
            await client.jetstream(timeout=0.5).account_info()
        except (NatsError, TimeoutError) as error:
            return False, f"not answering: {str(error) or type(error).__name__}"
        return True, "up"

    async def ingest() -> tuple[bool, Any]:
        if res.ingestor is None:
            return False, "not started"
        role = "active" if res.ingestor.active else "standby"
        return True, {"role": role, "committedSeq": res.ingestor.committed_seq}

    res.health.register("database", database)
    res.health.register("broker", broker_check)
    res.health.register("ingest", ingest)


@contextlib.asynccontextmanager
async def _http(res: Resources, routes: list[Any]) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Serve HTTP; yields a function that stops it (finishing requests in flight), so the
    daemon can stop it before the broker and database connections close under it."""
    settings = res.settings

    async def nothing() -> None:
        return None

    if not settings.http_enabled:
        yield nothing
        return
    app = create_app(
        health=res.health,
        token=settings.api_token,
        max_body_bytes=settings.max_body_bytes,
        routes=routes,
        state={"resources": res},
    )
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = _Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag only
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # raises: the port is taken, say so
        raise RuntimeError(
            f"HTTP server did not start on {settings.http_host}:{settings.http_port}"
        )
    log.info("http_listening", url=f"http://{settings.http_host}:{settings.http_port}")

    async def stop_http() -> None:
        server.should_exit = True
        await task

    try:
        yield stop_http
    finally:
        await stop_http()


async def serve(
    settings: Settings,
    *,
    routes: list[Any] | None = None,
    stop: asyncio.Event | None = None,
    started: Callable[[Resources], None] | None = None,
) -> int:
    """Run until `stop` is set (by default: until SIGINT or SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    res = Resources(settings)
    _register_checks(res)
    register_production_checks(res.health, settings, lambda: res.pool)
    embedded = settings.embedded
    async with contextlib.AsyncExitStack() as stack:
        if embedded:
            from ..adapters.embedded import running  # the bare-machine default

            settings = res.settings = await stack.enter_async_context(running(settings))
        if routes is None:
            from ..adapters.http.routes_production import production_routes

            routes = production_routes()
        stop_http = await stack.enter_async_context(_http(res, routes))
        assert settings.database_url is not None
        dsn = settings.database_url
        res.pool = await retry("database", lambda: create_pool(dsn, max_size=8), stop)
        if res.pool is None:
            return 0
        stack.push_async_callback(_close_quietly, "database", res.pool.close)
        pool = res.pool
        if await retry("migrations", lambda: migrate_with(pool), stop) is None:
            return 0
        res.client = await retry("broker", lambda: broker.connect(settings), stop)
        if res.client is None:
            return 0
        stack.push_async_callback(_close_quietly, "broker", res.client.close)
        production = attach_production(res)
        res.ingestor = Ingestor(settings, pool, res.client, on_commit=production.on_commit)
        if embedded:
            from ..adapters.embedded import print_banner

            print_banner(settings)  # once it all answers: the addresses a person needs
        if started is not None:
            started(res)
        _settle_garbage_collector()
        status = await _run_until_stopped(res, stop)
        await stop_http()  # requests in flight finish while the connections are still open
    log.info("serve_stopped")
    return status


def _settle_garbage_collector() -> None:
    """Start-up leaves ~50k long-lived objects (frameworks, routes, codecs) that a full
    collection would walk for ~15 ms — a stall of the ingest loop, seen as latency spikes.
    Freeze them out of the collector's view, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def _close_quietly(what: str, close: Callable[[], Awaitable[None]]) -> None:
    """Shutting down must not fail because a server is already gone."""
    try:
        await asyncio.wait_for(close(), 10)
    except Exception as error:
        log.warning("close_failed", what=what, error=str(error) or type(error).__name__)


async def migrate_with(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return await migrate(conn)


async def _run_until_stopped(res: Resources, stop: asyncio.Event) -> int:
    """Run the workers until stopped; 1 when one of them ended on its own (a supervisor
    should restart the process), else 0."""
    assert res.ingestor is not None
    workers = [asyncio.ensure_future(res.ingestor.run(stop))]
    workers += [asyncio.ensure_future(w(stop)) for w in res.extras.get("workers", [])]
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopping, *workers], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for task in done:
        if task is not stopping and stopping not in done:  # not told to stop: a failure
            status = 1
            failure = task.exception()
            log.error("worker_ended", error=repr(failure) if failure else "returned")
    stop.set()
    log.info("draining", deadline_s=DRAIN_DEADLINE_S)
    _, late = await asyncio.wait(workers, timeout=DRAIN_DEADLINE_S)
    for task in late:
        task.cancel()
    if late:
        log.warning("drain_deadline_passed", cancelled=len(late))
    return status
