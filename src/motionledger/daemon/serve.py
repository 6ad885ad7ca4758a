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
from typing import Any, TypeVar

import uvicorn

from .. import logs
from ..adapters.nats import broker
from ..adapters.postgres.database import create_pool, migrate_pool
from ..errors import MigrationError
from ..http.app import create_app
from ..services.backoff import Backoff
from ..settings import Settings
from .runtime import Runtime, Services

log = logs.get(__name__)
T = TypeVar("T")
DRAIN_DEADLINE_S = 15.0
HTTP_GRACE_S = 5


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


async def retry(what: str, attempt: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T | None:
    """Keep trying until it works or we are told to stop (then None). A schema that cannot
    be brought up to date (a changed migration, a role without the privileges) is raised at
    once: retrying cannot help, and a supervisor should see the process fail."""
    backoff = Backoff(first=0.2, cap=3.0)
    while not stop.is_set():
        try:
            return await attempt()
        except MigrationError:
            raise
        except Exception as error:
            log.warning("waiting_for", what=what, error=str(error) or type(error).__name__)
            await backoff.sleep(stop)
    return None


@contextlib.asynccontextmanager
async def _http(runtime: Runtime) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Serve HTTP; yields a function that stops it (finishing requests in flight), so the
    daemon can stop it before the broker and database connections close under it."""
    settings = runtime.settings

    async def nothing() -> None:
        return None

    if not settings.http_enabled:
        yield nothing
        return
    app = create_app(
        health=runtime.health,
        reads=runtime.queries,
        derived=runtime.derived,
        writes=runtime.writes,
        token=settings.api_token,
        max_body_bytes=settings.max_body_bytes,
        live=runtime.live,
    )
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # the live streams are closed before HTTP stops (the hub is a worker); a client that
        # stopped reading may still hold its connection: it is not waited for past this
        timeout_graceful_shutdown=HTTP_GRACE_S,
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
    stop: asyncio.Event | None = None,
    started: Callable[[Runtime], None] | None = None,
) -> int:
    """Run until `stop` is set (by default: until SIGINT or SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(settings)
    runtime.register_checks()
    embedded = settings.embedded
    async with contextlib.AsyncExitStack() as stack:
        if embedded:
            from ..adapters.embedded import running  # the bare-machine default

            settings = runtime.settings = await stack.enter_async_context(running(settings))
        stop_http = await stack.enter_async_context(_http(runtime))
        assert settings.database_url is not None
        dsn = settings.database_url
        runtime.pool = await retry("database", lambda: create_pool(dsn, max_size=8), stop)
        if runtime.pool is None:
            return 0
        stack.push_async_callback(_close_quietly, "database", runtime.pool.close)
        pool = runtime.pool
        if await retry("migrations", lambda: migrate_pool(pool), stop) is None:
            return 0
        runtime.client = await retry("broker", lambda: broker.connect(settings), stop)
        if runtime.client is None:
            return 0
        stack.push_async_callback(_close_quietly, "broker", runtime.client.close)
        runtime.services = Services.build(settings, pool, runtime.client)
        if embedded:
            from ..adapters.embedded import print_banner

            print_banner(settings)  # once it all answers: the addresses a person needs
        if started is not None:
            started(runtime)
        _settle_garbage_collector()
        status = await _run_until_stopped(runtime.services, stop)
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


async def _run_until_stopped(services: Services, stop: asyncio.Event) -> int:
    """Run the workers until stopped; 1 when one of them ended on its own (a supervisor
    should restart the process), else 0."""
    workers = [asyncio.ensure_future(run(stop)) for run in services.workers]
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
