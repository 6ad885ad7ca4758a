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
from typing import Final, Protocol

from .. import logs
from ..adapters.postgres import projections as pg
from ..adapters.postgres import shadows
from ..adapters.postgres.database import Connection, connect, discard, is_open
from ..adapters.postgres.projection_sql import bulk_statement
from ..domain.projections import NAMES, Projection, select, unknown
from ..errors import Contended, RebuildBusy, UnknownProjection

log = logs.get(__name__)

CHUNK: Final = 50_000  # log positions per bulk transaction
# connections that load and index the shadows side by side: Python only waits here, so
# the database may use every core for a rebuild
WORKERS: Final = 2
Job = Callable[[Connection], Awaitable[None]]
CLOSE_ENOUGH: Final = 5_000  # positions the shadows may trail before the swap's own catch-up
SWAP_ATTEMPTS: Final = 10


class Reporter(Protocol):
    """Told how the rebuild goes (the CLI draws a progress bar from it)."""

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

    @property
    def rate(self) -> float:
        """Events per second while building."""
        return self.built_positions / self.build_seconds if self.build_seconds else 0.0


async def rebuild(
    dsn: str,
    names: Sequence[str] = (),
    *,
    reporter: Reporter | None = None,
    chunk: int = CHUNK,
) -> Rebuilt:
    """Rebuild the named read tables (all six when none are named) and swap them in."""
    missing = unknown(tuple(names))
    if missing:
        raise UnknownProjection(f"unknown projection {missing[0]!r}; known: {', '.join(NAMES)}")
    projections = select(tuple(names))
    reporter = reporter or _Silent()
    started = time.monotonic()
    conn = await connect(dsn)
    try:
        if not await shadows.begin_rebuild(conn):
            raise RebuildBusy("another rebuild is running against this database")
        try:
            return await _rebuild(dsn, conn, projections, reporter, chunk, started)
        except BaseException:
            if is_open(conn):
                await shadows.drop_shadows(conn, [p.name for p in projections])
            raise
    finally:
        discard(conn)


async def _rebuild(
    dsn: str,
    conn: Connection,
    projections: tuple[Projection, ...],
    reporter: Reporter,
    chunk: int,
    started: float,
) -> Rebuilt:
    names = tuple(p.name for p in projections)
    for projection in projections:
        await shadows.create_shadow(conn, projection.name)
        if projection.patches:  # folding patches into rows looks rows up by id
            await shadows.create_indexes(conn, projection.name, unique=True)
    # one statement per table: each scans the range alone, so Postgres streams it
    statements = {
        p.name: bulk_statement(p, f"production.{shadows.shadow(p.name)}") for p in projections
    }
    target = await pg.head(conn)
    log.debug("rebuild_started", projections=names, head=target)
    reporter.phase("building", target)
    await _parallel(dsn, conn, _load_jobs(projections, statements, target, chunk, reporter))
    build_seconds = time.monotonic() - started
    reporter.phase("indexing", len(projections))
    await _parallel(dsn, conn, await _index_jobs(conn, projections, reporter))
    for projection in projections:
        await shadows.analyze(conn, projection.name)
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
    rows = {name: await shadows.count_rows(conn, name) for name in names}
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
        async def job(conn: Connection) -> None:
            await _apply(conn, [statement], 0, target, chunk, reporter, share)

        return job

    def one_range(low: int, high: int) -> Job:
        async def job(conn: Connection) -> None:
            await _apply(conn, appending, low, high, chunk, reporter, share)

        return job

    # the long in-order jobs first, so the ranges fill in around them
    return [in_order(s) for s in patching] + (
        [one_range(low, high) for low, high in ranges] if appending else []
    )


async def _index_jobs(
    conn: Connection, projections: tuple[Projection, ...], reporter: Reporter
) -> list[Job]:
    """Every index still missing on the shadows, one job each, biggest tables first."""
    sized: list[tuple[int, Job]] = []
    for projection in projections:
        name = projection.name
        # patching tables got their unique indexes before the load
        todo = [
            i for i in await shadows.index_defs(conn, name) if not (projection.patches and i.unique)
        ]
        rows = await shadows.count_rows(conn, name, of_shadow=True)
        for index in todo:
            sized.append((rows, _index_job(name, index, reporter, 1 / len(todo))))
    return [job for _, job in sorted(sized, key=lambda item: -item[0])]


def _index_job(name: str, index: shadows.IndexDef, reporter: Reporter, share: float) -> Job:
    async def job(conn: Connection) -> None:
        await shadows.build_index(conn, name, index)
        reporter.advance(share)

    return job


async def _parallel(dsn: str, conn: Connection, jobs: list[Job]) -> None:
    """Run `jobs` on `conn` and WORKERS - 1 more connections, each taking the next job."""
    queue = iter(jobs)
    extra = [await connect(dsn) for _ in range(min(WORKERS, len(jobs)) - 1)]

    async def worker(worker_conn: Connection) -> None:
        for job in queue:
            await job(worker_conn)

    tasks: list[asyncio.Task[None]] = []
    try:
        for other in extra:
            await shadows.prepare_bulk(other)
        tasks = [asyncio.ensure_future(worker(c)) for c in (conn, *extra)]
        await asyncio.gather(*tasks)
    finally:
        # one worker failed: stop the others before anyone uses their connections again
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for other in extra:
            discard(other)


async def _apply(
    conn: Connection,
    statements: list[str],
    position: int,
    upto: int,
    chunk: int,
    reporter: Reporter,
    share: float = 1.0,
) -> int:
    while position < upto:
        end = min(upto, position + chunk)
        await shadows.apply_range(conn, statements, position, end)
        reporter.advance((end - position) * share)
        position = end
    return position


async def _swap(
    conn: Connection,
    statements: list[str],
    names: tuple[str, ...],
    position: int,
    chunk: int,
) -> int:
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            return await shadows.swap(conn, names, statements, position)
        except Contended:
            log.warning("rebuild_swap_waiting", attempt=attempt, projections=names)
            position = await _apply(
                conn, statements, position, await pg.head(conn), chunk, _Silent()
            )
    raise Contended(f"could not take the tables' locks for the swap in {SWAP_ATTEMPTS} tries")
