"""`motionledger rebuild`: read tables rebuilt from the log while `serve` keeps running.

    build: shadow tables (no secondary indexes yet) filled from position 0 to the head seen
           at the start, range by range, with the projectors' own set-based SQL
    index: the shadows' remaining indexes, built once over the loaded rows (faster than
           maintaining them row by row)
    catch up: more ranges until the shadows trail the head by little
    swap:  one short transaction: lock the live tables against writers (readers pass) and
           their checkpoints (this waits out the live projector's batch and holds it off),
           apply the last few positions, drop the old tables, rename the shadows and their
           indexes, set the checkpoints

Readers never see a half-built table: the live tables keep answering (and the live
projector keeps them current) until the swap commits, and a query that queued behind the
swap's lock resolves the table's name again and reads the new one. Rows depend only on the
log (times are its recorded times), so two rebuilds give byte-identical tables.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .. import logs
from ..adapters.postgres import projections as pg
from ..adapters.postgres.database import connect
from ..adapters.postgres.projection_sql import bulk_statement
from ..domain.projections import Projection, select

log = logs.get(__name__)

CHUNK: Final = 50_000  # log positions per bulk transaction
# connections that load and index the shadows side by side: Python only waits here, so
# the database may use every core for a rebuild
WORKERS: Final = 2
_SESSION: Final = (
    "SET synchronous_commit = off; SET work_mem = '64MB'; SET maintenance_work_mem = '256MB'"
)
Job = Callable[[asyncpg.Connection], Awaitable[None]]
CLOSE_ENOUGH: Final = 5_000  # positions the shadows may trail before the swap's own catch-up
SWAP_LOCK_TIMEOUT: Final = "2s"  # queued readers wait at most this long behind the swap
SWAP_ATTEMPTS: Final = 10


class RebuildBusy(RuntimeError):
    pass


class Reporter(Protocol):
    def phase(self, description: str, total: int | None, completed: int = 0) -> None: ...

    def advance(self, positions: float) -> None: ...


class _Silent:
    def phase(self, description: str, total: int | None, completed: int = 0) -> None:
        pass

    def advance(self, positions: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Rebuilt:
    names: tuple[str, ...]
    position: int  # the log position the swapped-in tables stand at
    rows: dict[str, int]
    seconds: float
    build_seconds: float  # the bulk load from position 0 (what the rate is taken over)
    built_positions: int


async def rebuild(
    dsn: str,
    names: Sequence[str] = (),
    *,
    reporter: Reporter | None = None,
    chunk: int = CHUNK,
) -> Rebuilt:
    """Rebuild the named read tables (all six when none are named) and swap them in."""
    projections = select(tuple(names))
    reporter = reporter or _Silent()
    started = time.monotonic()
    conn = await connect(dsn)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", pg.REBUILD_LOCK):
            raise RebuildBusy("another rebuild is running against this database")
        # A crash before the swap leaves only shadows, dropped by the next rebuild: the bulk
        # load need not wait for each commit to be flushed.
        await conn.execute(_SESSION)
        try:
            return await _rebuild(dsn, conn, projections, reporter, chunk, started)
        except BaseException:
            if not conn.is_closed():
                await pg.drop_shadows(conn, [p.name for p in projections])
            raise
    finally:
        await conn.close()


async def _rebuild(
    dsn: str,
    conn: asyncpg.Connection,
    projections: tuple[Projection, ...],
    reporter: Reporter,
    chunk: int,
    started: float,
) -> Rebuilt:
    names = tuple(p.name for p in projections)
    for projection in projections:
        await pg.create_shadow(conn, projection.name)
        if projection.patches:  # folding patches into rows looks rows up by id
            await pg.create_indexes(conn, projection.name, unique=True)
    # one statement per table: each scans the range alone, so Postgres streams it
    statements = {p.name: bulk_statement(p, f"production.{pg.shadow(p.name)}") for p in projections}
    target = await pg.head(conn)
    log.debug("rebuild_started", projections=names, head=target)
    reporter.phase("building", target)
    await _parallel(dsn, conn, _load_jobs(projections, statements, target, chunk, reporter))
    build_seconds = time.monotonic() - started
    reporter.phase("indexing", len(projections))
    await _parallel(dsn, conn, await _index_jobs(conn, projections, reporter))
    for projection in projections:
        # the planner's statistics, and the visibility map that lets index-only scans skip
        # the heap (the derived reads' probes), both ready when they go live
        await conn.execute(f"VACUUM (ANALYZE) production.{pg.shadow(projection.name)}")
    position = target
    ordered = list(statements.values())
    while True:
        head = await pg.head(conn)
        if head - position <= CLOSE_ENOUGH:
            break
        reporter.phase("catching up", head, position)
        position = await _apply(conn, ordered, position, head, chunk, reporter)
    reporter.phase("swapping in", 1)
    position = await _swap(conn, ordered, names, position, chunk)
    reporter.advance(1)
    rows = {name: await conn.fetchval(f"SELECT count(*) FROM production.{name}") for name in names}
    log.debug("rebuilt", projections=names, position=position, rows=rows)
    return Rebuilt(names, position, rows, time.monotonic() - started, build_seconds, target)


def _load_jobs(
    projections: tuple[Projection, ...],
    statements: dict[str, str],
    target: int,
    chunk: int,
    reporter: Reporter,
) -> list[Job]:
    """The bulk load from position 0 as independent jobs. A table that only appends (one row
    per event) may load its ranges in any order, so each range is a job of its own; a table
    that folds patches into rows must see the log in order, so it is one job."""
    ranges = [(low, min(target, low + chunk)) for low in range(0, target, chunk)]
    appending = [statements[p.name] for p in projections if not p.patches]
    patching = [statements[p.name] for p in projections if p.patches]
    share = 1 / (len(patching) + (1 if appending else 0))  # of a range, in progress units

    def in_order(statement: str) -> Job:
        async def job(conn: asyncpg.Connection) -> None:
            await _apply(conn, [statement], 0, target, chunk, reporter, share)

        return job

    def one_range(low: int, high: int) -> Job:
        async def job(conn: asyncpg.Connection) -> None:
            await _apply(conn, appending, low, high, chunk, reporter, share)

        return job

    # the long in-order jobs first, so the ranges fill in around them
    return [in_order(s) for s in patching] + (
        [one_range(low, high) for low, high in ranges] if appending else []
    )


async def _index_jobs(
    conn: asyncpg.Connection, projections: tuple[Projection, ...], reporter: Reporter
) -> list[Job]:
    """Every index still missing on the shadows, one job each, biggest tables first."""
    sized: list[tuple[int, Job]] = []
    for projection in projections:
        name = projection.name
        # patching tables got their unique indexes before the load
        todo = [i for i in await pg.index_defs(conn, name) if not (projection.patches and i.unique)]
        rows = await conn.fetchval(f"SELECT count(*) FROM production.{pg.shadow(name)}")
        for index in todo:
            sized.append((rows, _index_job(name, index, reporter, 1 / len(todo))))
    return [job for _, job in sorted(sized, key=lambda item: -item[0])]


def _index_job(name: str, index: pg.IndexDef, reporter: Reporter, share: float) -> Job:
    async def job(conn: asyncpg.Connection) -> None:
        await pg.build_index(conn, name, index)
        reporter.advance(share)

    return job


async def _parallel(dsn: str, conn: asyncpg.Connection, jobs: list[Job]) -> None:
    """Run `jobs` on `conn` and WORKERS - 1 more connections, each taking the next job."""
    queue = iter(jobs)
    extra = [await connect(dsn) for _ in range(min(WORKERS, len(jobs)) - 1)]

    async def worker(worker_conn: asyncpg.Connection) -> None:
        for job in queue:
            await job(worker_conn)

    tasks: list[asyncio.Task[None]] = []
    try:
        for other in extra:
            await other.execute(_SESSION)
        tasks = [asyncio.ensure_future(worker(c)) for c in (conn, *extra)]
        await asyncio.gather(*tasks)
    finally:
        # one worker failed: stop the others before anyone uses their connections again
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for other in extra:
            other.terminate()


async def _apply(
    conn: asyncpg.Connection,
    statements: list[str],
    position: int,
    upto: int,
    chunk: int,
    reporter: Reporter,
    share: float = 1.0,
) -> int:
    while position < upto:
        end = min(upto, position + chunk)
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement, position, end)
        reporter.advance((end - position) * share)
        position = end
    return position


async def _swap(
    conn: asyncpg.Connection,
    statements: list[str],
    names: tuple[str, ...],
    position: int,
    chunk: int,
) -> int:
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(
                    f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}';"
                    " SET LOCAL synchronous_commit = on"
                )
                await pg.lock_for_swap(conn, names)
                head = await pg.head(conn)
                done = await _apply(conn, statements, position, head, chunk, _Silent())
                await pg.swap_in(conn, names, done)
            return done
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
            log.warning("rebuild_swap_waiting", attempt=attempt, projections=names)
            position = await _apply(
                conn, statements, position, await pg.head(conn), chunk, _Silent()
            )
    raise RuntimeError(f"could not take the tables' locks for the swap in {SWAP_ATTEMPTS} tries")


# -- the command's progress bar ---------------------------------------------------------------
class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "", style="progress.data.speed")


class RichReporter:
    """A progress bar on stderr: positions done of the head, events/s, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def phase(self, description: str, total: int | None, completed: int = 0) -> None:
        if self._task is not None:
            self._progress.stop_task(self._task)
        self._task = self._progress.add_task(f"{description:<12}", total=total, completed=completed)

    def advance(self, positions: float) -> None:
        if self._task is not None:
            self._progress.advance(self._task, positions)


async def run_rebuild(dsn: str, names: Sequence[str], *, chunk: int, quiet: bool) -> int:
    """The command: rebuild, show progress, summarise. Exit status 0 once they are live."""
    console = Console(stderr=True)
    try:
        if quiet:
            result = await rebuild(dsn, names, chunk=chunk)
        else:
            with RichReporter(console) as reporter:
                result = await rebuild(dsn, names, reporter=reporter, chunk=chunk)
    except (RebuildBusy, KeyError) as error:
        console.print(f"motionledger rebuild: {error}")
        return 1
    rate = result.built_positions / result.build_seconds if result.build_seconds else 0.0
    rows = ", ".join(f"{name} {count:,}" for name, count in result.rows.items())
    console.print(
        f"rebuilt {', '.join(result.names)} at position {result.position:,} in "
        f"{result.seconds:.1f}s ({rate:,.0f} events/s while building); rows now: {rows}"
    )
    return 0
