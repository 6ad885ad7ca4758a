"""Progress of the long commands (verify, rebuild): a rich bar on stderr, for a person only.

It is off with --quiet and when stderr is not a terminal (a pipe, a log file, CI), so what
scripts read (stdout, JSON) and what they log stays clean.
"""

from __future__ import annotations

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


class Rate(ProgressColumn):
    """Log positions (events) per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "", style="progress.data.speed")


def stderr() -> Console:
    return Console(stderr=True)


def shown(console: Console, *, quiet: bool) -> bool:
    """Whether a person is watching: a terminal, and not told to be quiet."""
    return not quiet and console.is_terminal


def positions_bar(console: Console, *, quiet: bool) -> Progress:
    """Positions done of the total, events/s, ETA, elapsed (disabled unless `shown`)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not shown(console, quiet=quiet),
    )
