"""`make bench` / `python -m bench`: the ledger against what a user could pick instead, in one
run on one machine, with ratios checked against issue 5's targets.

Phases (each on its own fresh databases and streams, all removed at the end):
 1. backlog   — a mixed shoot (every event kind, many sessions) published to a stream;
 2. drain     — (a) plain nats-py consumer and (d) the ledger, alternated `reps` times on
                that backlog; (b) one INSERT per event on its first part; (c) COPY of the
                rows the ledger wrote; medians are compared;
 3. rebuild   — `motionledger rebuild` of every read table from that log, vs (c);
 4. load      — the max sustained under a running publisher, then steady offered load at
                1k, 5k and 80 % of that max: latencies, projection lag, daemon CPU, peak RSS;
 5. queries   — a log of one session with 1 M events (10 M with --big), written with COPY
                and a valid hash chain, rebuilt, then queried over HTTP, the derived reads
                (issue 14) included, and a full page of cut-log from a session of 100 k cuts;
 6. scale     — the same batch drained on top of a 10 k log and of that big log;
 7. live      — the live session stream (bench/live.py): the catch-up index's cost to the
                drain, and followers over SSE (issue 13).

`--only derived` runs the derived reads' part of 5 alone (no drains before it); `--only live`
the live session stream's part (bench/live.py: the catch-up index's cost to the drain, and
followers over SSE).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
from rich.console import Console

from motionledger import logs
from motionledger.adapters.nats.broker import ensure_stream
from motionledger.producer import Producer
from motionledger.settings import Settings

from . import baselines, derived, live, report, workload
from .drain import Drain, drain, wait_projected
from .infra import Daemon, Infra
from .load import offered_load
from .progress import Phases, parts_of, phases
from .queries import query_latencies, rebuild


@dataclass(frozen=True)
class Sizes:
    backlog: int = 60_000
    reps: int = 5
    naive: int = 12_000
    load_seconds: float = 30.0
    load_cap: int = 400_000  # events pre-generated for one load level at most
    query_log: int = 1_000_000
    query_n: int = 300
    page: int = 1000
    scale_small: int = 10_000
    scale_batch: int = 20_000
    scale_reps: int = 3
    derived_n: int = 300
    cut_session: int = 100_000
    full_page_n: int = 30


QUICK = Sizes(
    backlog=3_000,
    reps=1,
    naive=300,
    load_seconds=2.0,
    load_cap=20_000,
    query_log=12_000,
    query_n=30,
    page=20,
    scale_small=1_000,
    scale_batch=2_000,
    scale_reps=1,
    derived_n=20,
    cut_session=40_000,
    full_page_n=3,
)


class Bench:
    def __init__(self, infra: Infra, sizes: Sizes, phases: Phases, seed: int) -> None:
        self.infra, self.sizes, self.phases, self.seed = infra, sizes, phases, seed
        self.results: dict[str, Any] = {}

    @property
    def current(self) -> str:
        return self.phases.current

    def phase(self, name: str) -> None:
        ended, seconds = self.phases.start(name)
        self.results.setdefault("phase_seconds", {})[ended] = round(seconds, 1)

    def step(self) -> None:
        self.phases.part_done()

    async def stream(self) -> tuple[str, str]:
        stream, root = self.infra.new_stream()
        settings = Settings(stream=stream, subject_root=root, stream_max_age="1h")
        client = await nats.connect(self.infra.nats_url)
        try:
            await ensure_stream(client.jetstream(), settings)
        finally:
            await client.close()
        return stream, root

    async def publish(self, stream: str, root: str, events: list[Any]) -> tuple[float, int]:
        """Publish a backlog; (events/s, last stream sequence)."""
        prepared = workload.prepare_all(events, root)
        client = await nats.connect(self.infra.nats_url)
        try:
            async with Producer(client, subject_root=root, fence=False, fast_path=True) as producer:
                rate = await workload.publish_all(producer, prepared)
            info = await client.jetstream().stream_info(stream)
            return rate, int(info.state.last_seq)
        finally:
            await client.close()

    # -- 1-3: backlog, drains, rebuild ----------------------------------------------------
    async def drains(self) -> Daemon:
        s = self.sizes
        self.phase(f"backlog: publishing {s.backlog:,} mixed events")
        stream, root = await self.stream()
        events = workload.mixed_events(s.backlog, seed=self.seed)
        publish_rate, last_seq = await self.publish(stream, root, events)
        self.step()
        count = len(events)
        plain: list[dict[str, Any]] = []
        ledger: list[Drain] = []
        daemon: Daemon | None = None
        for rep in range(s.reps):
            self.phase(f"drain {rep + 1}/{s.reps}: (a) plain nats-py consumer")
            plain.append(
                await baselines.run_child(
                    "plain",
                    "--nats",
                    self.infra.nats_url,
                    "--stream",
                    stream,
                    "--count",
                    str(count),
                )
            )
            self.phase(f"drain {rep + 1}/{s.reps}: (d) motionledger serve")
            if daemon is not None:
                daemon.stop()
            database = await self.infra.database()
            result, daemon = await drain(
                self.infra, database, stream, root, events=count, last_seq=last_seq
            )
            ledger.append(result)
        assert daemon is not None
        self.phase(f"drain: (b) one INSERT per event ({min(s.naive, count):,} events)")
        naive = await baselines.run_child(
            "naive",
            "--nats",
            self.infra.nats_url,
            "--stream",
            stream,
            "--count",
            str(min(s.naive, count)),
            "--database",
            await self.infra.database(),
        )
        self.phase("drain: (c) COPY of the same rows")
        rows = await workload.log_rows(daemon.database_url)
        copy = await baselines.copy_rate(rows, await self.infra.database())
        del rows
        plain_rates = [p["events"] / p["seconds"] for p in plain]
        self.results["drain"] = {
            "events": count,
            "backlog_publish_rate": publish_rate,
            "plain_runs": plain_rates,
            "ledger_runs": [d.rate for d in ledger],
            "plain_rate": statistics.median(plain_rates),
            "ledger_rate": statistics.median(d.rate for d in ledger),
            "ledger_cpu_s_per_1000": statistics.median(
                d.cpu_seconds / count * 1000 for d in ledger
            ),
            "naive_rate": naive["events"] / naive["seconds"],
            "naive_events": naive["events"],
            "copy_rate": copy["events"] / copy["seconds"],
        }
        self.step()
        return daemon

    async def rebuild(self, daemon: Daemon) -> None:
        count = self.results["drain"]["events"]
        self.phase(f"rebuild: every read table from a {count:,}-event log")
        await wait_projected(daemon.database_url)
        rb = await rebuild(daemon.database_url, count)
        self.results["rebuild"] = {**rb, "rate": count / rb["seconds"]}
        self.step()

    # -- 4: steady load ---------------------------------------------------------------------
    async def load(self, daemon: Daemon) -> None:
        """1k, 5k and 80 % of the ledger's max under steady load. That max is measured here,
        not taken from the drain: with a publisher running, the broker's intake and the
        publisher share the machine with the ledger. A short run offered more than the
        drain rate tells how much the ledger commits while it is being fed."""
        client = await nats.connect(self.infra.nats_url)
        try:
            drain_rate = self.results["drain"]["ledger_rate"]
            probe = await self._offer(client, daemon, "max", 1.1 * drain_rate, probe=True)
            maximum = probe["committed_rate"]
            self.results["load_max"] = {
                "drain_rate": drain_rate,
                "offered": probe["offered"],
                "sustained": maximum,
            }
            out = [
                await self._offer(client, daemon, label, rate)
                for label, rate in (("1k", 1000.0), ("5k", 5000.0), ("80% max", 0.8 * maximum))
            ]
        finally:
            await client.close()
        self.results["load"] = out
        self.step()

    async def _offer(
        self, client: Any, daemon: Daemon, label: str, rate: float, *, probe: bool = False
    ) -> dict[str, Any]:
        s = self.sizes
        seconds = min(s.load_seconds / (4 if probe else 1), s.load_cap / rate)
        self.phase(f"load {label}: preparing {int(rate * seconds):,} events")
        events = workload.mixed_events(int(rate * seconds) + 1, seed=self.seed + int(rate))
        prepared = workload.prepare_all(events, daemon.root)
        del events
        await wait_projected(daemon.database_url)
        self.phase(f"load {label}: {rate:,.0f} ev/s for {seconds:.0f} s")
        async with Producer(
            client, subject_root=daemon.root, fence=False, fast_path=True
        ) as producer:
            result = await offered_load(daemon, producer, prepared, rate=rate, seconds=seconds)
        return {"label": label, **result.as_dict()}

    # -- 5-6: a big log: queries, rebuild, per-event cost ---------------------------------
    async def query_session(self, events: Iterator[Any], count: int) -> tuple[str, str, Daemon]:
        """A log of one session written with COPY, its read tables rebuilt, and `serve` on
        it: (database, session, daemon)."""
        database = await self.infra.database()
        first = next(events)
        await workload.bulk_load(database, _chain([first], events))
        self.phase(f"queries: rebuilding read tables of {count:,} events")
        rb = await rebuild(database, count)
        self.results.setdefault("rebuilds", []).append(rb)
        stream, root = await self.stream()
        daemon = await Daemon(self.infra, database, stream, root).start(hold=False)
        await wait_projected(database)
        return database, first.session_id, daemon

    async def big_log(self) -> None:
        s = self.sizes
        self.phase(f"queries: writing a {s.query_log:,}-event session with COPY")
        session_events = workload.one_session(s.query_log, seed=self.seed + 7)
        big_db, session, daemon = await self.query_session(session_events, s.query_log)
        rb = self.results["rebuilds"][-1]
        self.results["rebuild_big"] = {**rb, "rate": s.query_log / rb["seconds"]}
        self.phase("queries: HTTP latency")
        latencies = await query_latencies(daemon, session, n=s.query_n, page=s.page)
        self.results["queries"] = {
            "events": s.query_log,
            "session": session,
            "page": s.page,
            "latency_ms": latencies,
        }
        await self.derived_reads(daemon, big_db, session)
        daemon.stop()
        self.step()
        small_runs: list[float] = []
        big_runs: list[float] = []
        small_rss: list[float] = []
        big_rss: list[float] = []
        for rep in range(s.scale_reps):
            self.phase(f"scale {rep + 1}/{s.scale_reps}: batch on a {s.scale_small:,} log")
            small_db = await self.infra.database()
            await workload.bulk_load(small_db, workload.one_session(s.scale_small, seed=rep))
            await rebuild(small_db, s.scale_small)
            cost, rss = await self.drain_on(small_db, rep)
            small_runs.append(cost)
            small_rss.append(rss)
            await self.infra.drop_database(small_db)
            self.phase(f"scale {rep + 1}/{s.scale_reps}: batch on a {s.query_log:,} log")
            cost, rss = await self.drain_on(big_db, rep)
            big_runs.append(cost)
            big_rss.append(rss)
        self.results["scale"] = {
            "small_log": s.scale_small,
            "big_log": s.query_log,
            "batch": s.scale_batch,
            "small_us_per_event": statistics.median(small_runs),
            "big_us_per_event": statistics.median(big_runs),
            "small_runs": small_runs,
            "big_runs": big_runs,
            # the daemon's peak RSS draining the batch: memory must not grow with the log
            "small_peak_rss_mb": statistics.median(small_rss),
            "big_peak_rss_mb": statistics.median(big_rss),
        }
        self.step()

    async def derived_reads(self, daemon: Daemon, database: str, session: str) -> None:
        """Issue 14: the derived reads on the big session, and a full page of cut-log from a
        session of many cuts (its own database and daemon)."""
        s = self.sizes
        self.phase("queries: derived reads (cut-log, hero-windows, alignment, asOf)")
        figures = await derived.big_session_figures(daemon.port, database, session, n=s.derived_n)
        self.phase(f"queries: a session of {s.cut_session:,} cuts for a full cut-log page")
        cuts_db, cuts, cuts_daemon = await self.query_session(
            derived.cut_session(s.cut_session, seed=self.seed), s.cut_session
        )
        try:
            full = await derived.full_page_figures(cuts_daemon.port, cuts, n=s.full_page_n)
        finally:
            cuts_daemon.stop()
            await self.infra.drop_database(cuts_db)
        self.results["derived"] = {
            "events": s.query_log,
            "cuts": s.cut_session,
            **figures,
            "full_page": full,
        }

    async def derived_only(self) -> None:
        """`--only derived`: the big session and the derived reads alone."""
        s = self.sizes
        self.phase(f"queries: writing a {s.query_log:,}-event session with COPY")
        session_events = workload.one_session(s.query_log, seed=self.seed + 7)
        big_db, session, daemon = await self.query_session(session_events, s.query_log)
        try:
            await self.derived_reads(daemon, big_db, session)
        finally:
            daemon.stop()
        self.step()

    async def live(self) -> None:
        """Issue 13's figures (bench/live.py): part `live`, or `--only live`."""
        s = self.sizes
        backlog = workload.mixed_events(s.backlog, seed=self.seed)
        quick = s is QUICK
        self.results["live"] = await live.figures(
            self.infra, self.stream, self.publish, backlog,
            reps=1 if quick else 3, quick=quick, phase=self.phase,
        )  # fmt: skip

    async def drain_on(self, database: str, rep: int) -> tuple[float, float]:
        """µs per event to drain the scale batch on top of the database's log, and the
        daemon's peak RSS (MB) meanwhile."""
        stream, root = await self.stream()
        events = workload.mixed_events(self.sizes.scale_batch, seed=self.seed + 1000 + rep)
        _, last_seq = await self.publish(stream, root, events)
        result, daemon = await drain(
            self.infra,
            database,
            stream,
            root,
            events=len(events),
            last_seq=last_seq,
        )
        rss = daemon.peak_rss_bytes() / 2**20
        daemon.stop()
        return result.seconds / len(events) * 1e6, rss


def _chain(first: list[Any], rest: Any) -> Any:
    yield from first
    yield from rest


async def machine(infra: Infra, mode: str) -> dict[str, Any]:
    conn = await asyncpg.connect(infra.pg_admin_url)
    try:
        version = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        sync = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    client = await nats.connect(infra.nats_url)
    server = client._server_info.get("version", "?")
    await client.close()
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "cores": os.cpu_count(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "postgres": version,
        "fsync": fsync,
        "synchronous_commit": sync,
        "nats_server": server,
        "python": platform.python_version(),
        "mode": mode,
    }


async def main_async(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else Sizes()
    if args.big:
        sizes = Sizes(**{**sizes.__dict__, "query_log": 10_000_000})
    mode = "quick" if args.quick else ("big" if args.big else "default")
    if args.only:
        mode += f", only {args.only}"
    logs.configure("console", level=logging.WARNING)  # the table is the output
    console = Console(stderr=True)
    started = time.monotonic()
    failed: BaseException | None = None
    async with Infra.start(args.database_url, args.nats_url) as infra:
        meta = await machine(infra, mode)
        with phases(console, parts_of(args.parts), quiet=args.quiet) as shown:
            bench = Bench(infra, sizes, shown, seed=args.seed)
            try:
                if args.only == "derived":
                    await bench.derived_only()
                elif args.only == "live":
                    await bench.live()
                    bench.step()
                else:
                    daemon = await bench.drains()
                    if "rebuild" in args.parts:
                        await bench.rebuild(daemon)
                    if "load" in args.parts:
                        await bench.load(daemon)
                    daemon.stop()
                    if "big" in args.parts:
                        await bench.big_log()
                    if "live" in args.parts:
                        await bench.live()
            except (Exception, asyncio.CancelledError) as error:
                # report what was measured before the failure, then fail
                failed = error
                bench.results["error"] = f"{bench.current}: {error!r}"
                console.print_exception()
            bench.phase("done")
        results = {"meta": meta, "sizes": sizes.__dict__, **bench.results}
    results["scratch"] = infra.created  # all dropped or deleted by now
    meta["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["seconds"] = time.monotonic() - started
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    paths = report.write(results, args.out, stamp)
    out = Console()
    report.show(results, out if out.is_terminal else Console(width=150))
    console.print("results: " + ", ".join(str(p) for p in paths))
    if failed is not None:
        console.print(f"[red]bench failed in {results['error']}[/red]")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every part, briefly (~1 min)")
    parser.add_argument("--big", action="store_true", help="a 10 M-event log instead of 1 M")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results dir")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (off anyway off a terminal)"
    )
    parser.add_argument(
        "--database-url",
        help="admin DSN of the PostgreSQL to create scratch databases on (default: "
        "$MOTIONLEDGER_BENCH_DATABASE_URL, local 5432, else a private embedded one)",
    )
    parser.add_argument("--nats-url", help="use this broker instead of a private nats-server")
    parser.add_argument(
        "--parts",
        type=lambda text: set(text.split(",")),
        default={"rebuild", "load", "big", "live"},
        help="after the drains, which parts to run (default: rebuild,load,big,live)",
    )
    parser.add_argument(
        "--only",
        choices=["derived", "live"],
        help="run this part alone: derived = the derived reads (issue 14) on their sessions; "
        "live = the live session stream (issue 13)",
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
