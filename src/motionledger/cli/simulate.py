"""`motionledger simulate`: a generated shoot played into a running ledger, with a progress bar
and a summary of what was sent and acknowledged."""

from __future__ import annotations

import argparse
import random
import time

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..adapters.embedded import broker_for_command
from ..producer import connect
from ..services.shoot import ShootPlan
from ..services.simulate import Summary, nats_options, play
from ..settings import Settings

STANDARD_BROKER = "nats://127.0.0.1:4222"


def render(summary: Summary, console: Console) -> None:
    table = Table(title=f"simulated shoot (seed {summary.plan.seed})", show_footer=True)
    table.add_column("event", footer="total")
    table.add_column("sent", justify="right", footer=str(summary.total))
    for kind, count in sorted(summary.sent.items()):
        table.add_row(kind, str(count))
    console.print(table)
    rate = summary.total / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    console.print(
        f"sessions: {', '.join(summary.sessions)}\n"
        f"acknowledged by the stream: {summary.acknowledged} "
        f"(already there: {summary.duplicates}), failed: {summary.failed}\n"
        f"in {summary.elapsed_s:.1f} s ({rate:,.0f} events/s); "
        f"replay exactly with --seed {summary.plan.seed} --start-ms {summary.plan.start_ms}"
    )
    if summary.first_error:
        console.print(f"[red]first failure: {summary.first_error}[/red]")


async def run(settings: Settings, options: argparse.Namespace) -> int:
    """The CLI entry: options carry sessions, cameras, duration, rate, tempo, seed, ..."""
    seed = options.seed if options.seed is not None else random.randrange(1 << 31)  # noqa: S311
    start_ms = options.start_ms if options.start_ms is not None else time.time_ns() // 1_000_000
    plan = ShootPlan(
        start_ms=start_ms,
        seed=seed,
        sessions=options.sessions,
        cameras=options.cameras,
        duration_s=options.duration,
        rate=options.rate,
        tempo=options.tempo,
    )
    console = Console(stderr=True)
    total_ms = int(plan.duration_s * 1000) + plan.sessions * plan.session_stagger_ms
    columns = (
        TextColumn("[bold]shoot[/bold]"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=options.quiet) as progress:
        task = progress.add_task("shoot", total=total_ms, clock="", counts="")

        def report(offset: int, summary: Summary) -> None:
            progress.update(
                task,
                completed=offset,
                clock=f"{offset / 1000:,.1f}/{total_ms / 1000:,.1f} s",
                counts=f"sent {summary.total:,} acked {summary.acknowledged:,}",
            )

        async with connect(
            broker_for_command(settings) or STANDARD_BROKER,
            subject_root=settings.subject_root,
            nats_options=nats_options(settings),
        ) as producer:
            summary = await play(producer, plan, speed=options.speed, on_progress=report)
    if options.json:
        print(msgspec.json.encode(summary.as_dict()).decode())
    else:
        render(summary, Console())
    return 0 if summary.failed == 0 else 1
