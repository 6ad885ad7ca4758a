"""`motionledger rebuild`: the read tables rebuilt while `serve` runs, with a progress bar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

from ..errors import InvalidRequest, RebuildBusy
from ..services.rebuild import rebuild


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
    except (RebuildBusy, InvalidRequest) as error:
        console.print(f"motionledger rebuild: {error}")
        return 1
    rows = ", ".join(f"{name} {count:,}" for name, count in result.rows.items())
    console.print(
        f"rebuilt {', '.join(result.names)} at position {result.position:,} in "
        f"{result.seconds:.1f}s ({result.rate:,.0f} events/s while building); rows now: {rows}"
    )
    return 0
