"""What `make bench` shows while it runs (minutes): on stderr, for a person at a terminal,
a line per finished phase with its duration, and a live line for the phase under way (parts
done of the total, how long this phase and the whole run have taken). Off with --quiet and
when stderr is not a terminal (CI, a pipe): the results table and files are the output."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

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
)
from rich.text import Text

STARTING = "starting"


class _PhaseElapsed(ProgressColumn):
    def render(self, task: Task) -> Text:
        since = task.fields.get("since")
        seconds = time.monotonic() - since if since is not None else 0.0
        return Text(f"{seconds:5.0f} s", style="progress.elapsed")


class Phases:
    """The bench's phases: named as they start, timed, shown (when shown at all)."""

    def __init__(self, progress: Progress, parts: int) -> None:
        self.progress = progress
        self.current, self.since = STARTING, time.monotonic()
        self._task = progress.add_task(STARTING, total=parts, since=self.since)

    def start(self, name: str) -> tuple[str, float]:
        """Begin phase `name`; returns the phase that ended and its seconds."""
        now = time.monotonic()
        ended, seconds = self.current, now - self.since
        if ended != STARTING and not self.progress.disable:
            self.progress.console.print(f"[green]✓[/green] {ended}  [dim]{seconds:.1f} s[/dim]")
        self.current, self.since = name, now
        self.progress.update(self._task, description=name, since=now)
        return ended, seconds

    def part_done(self) -> None:
        self.progress.advance(self._task)


@contextmanager
def phases(console: Console, parts: int, *, quiet: bool) -> Iterator[Phases]:
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]bench[/bold]"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        _PhaseElapsed(),
        TextColumn("total"),
        TimeElapsedColumn(),
    )
    shown = console.is_terminal and not quiet
    with Progress(*columns, console=console, refresh_per_second=2, disable=not shown) as progress:
        yield Phases(progress, parts)


def parts_of(chosen: set[str]) -> int:
    """How many parts a run has: backlog and drains always, then the chosen ones (the big
    log counts twice: its queries and its scale runs)."""
    return 2 + ("rebuild" in chosen) + ("load" in chosen) + 2 * ("big" in chosen)
