"""`motionledger simulate`: play a generated shoot (services/shoot.py) into a running ledger.

Events go out through the producer SDK, paced on the shoot's clock (`speed` 1 = real
time, 0 = as fast as the broker takes them), with a progress bar and a summary of what
was sent and acknowledged at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..domain.events import DirectorEvent
from ..producer import Ack, Producer, connect
from ..settings import Settings
from .shoot import ShootPlan, session_ids, shoot


@dataclass(slots=True)
class Summary:
    plan: ShootPlan
    sessions: list[str]
    sent: Counter[str] = field(default_factory=Counter)  # by type (director: by eventType)
    acknowledged: int = 0
    duplicates: int = 0
    failed: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.plan.seed,
            "startMs": self.plan.start_ms,
            "sessions": self.sessions,
            "sent": dict(sorted(self.sent.items())),
            "total": self.total,
            "acknowledged": self.acknowledged,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "firstError": self.first_error,
            "elapsedS": round(self.elapsed_s, 3),
        }


def _kind(event: Any) -> str:
    if isinstance(event, DirectorEvent):
        return f"director.{event.event_type}"
    return str(event.type_name)


async def play(
    producer: Producer,
    plan: ShootPlan,
    *,
    speed: float = 1.0,
    on_progress: Callable[[int, Summary], None] | None = None,
) -> Summary:
    """Publish the shoot; `speed` multiplies the shoot clock (0: no pacing at all)."""
    summary = Summary(plan, session_ids(plan))

    def acked(future: asyncio.Future[Ack]) -> None:
        error = future.exception()
        if error is not None:
            summary.failed += 1
            summary.first_error = summary.first_error or str(error)
            return
        summary.acknowledged += 1
        summary.duplicates += future.result().duplicate

    started = time.monotonic()
    last_report = 0.0
    for offset, event in shoot(plan):
        if speed > 0:
            ahead = offset / 1000 / speed - (time.monotonic() - started)
            if ahead > 0.001:
                await asyncio.sleep(ahead)
        future = await producer.submit(event)
        future.add_done_callback(acked)
        summary.sent[_kind(event)] += 1
        if on_progress is not None and time.monotonic() - last_report > 0.1:
            last_report = time.monotonic()
            on_progress(offset, summary)
    await producer.flush()
    summary.elapsed_s = time.monotonic() - started
    if on_progress is not None:
        on_progress(int(plan.duration_s * 1000) + plan.sessions * plan.session_stagger_ms, summary)
    return summary


def broker_url(settings: Settings) -> str:
    """The configured broker, else the embedded one `serve` remembers, else the standard port."""
    if settings.nats_url:
        return settings.nats_url
    if settings.embedded_nats_port:
        return f"nats://127.0.0.1:{settings.embedded_nats_port}"
    with contextlib.suppress(OSError, ValueError):
        port = int((Path(settings.data_dir) / "nats" / "port").read_text())
        return f"nats://127.0.0.1:{port}"
    return "nats://127.0.0.1:4222"


def nats_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    if settings.nats_tls_ca:
        options["tls"] = ssl.create_default_context(cafile=settings.nats_tls_ca)
    return options


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


async def run(settings: Settings, options: Any) -> int:
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
            broker_url(settings),
            subject_root=settings.subject_root,
            nats_options=nats_options(settings),
        ) as producer:
            summary = await play(producer, plan, speed=options.speed, on_progress=report)
    if options.json:
        import msgspec

        print(msgspec.json.encode(summary.as_dict()).decode())
    else:
        render(summary, Console())
    return 0 if summary.failed == 0 else 1
