"""`motionledger rebuild`: the read tables rebuilt while `serve` runs, with a progress bar
(for a person) and a summary (a sentence, or one JSON object with --json)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from rich.progress import Progress

from ..errors import InvalidRequest, RebuildBusy
from ..services.rebuild import Rebuilt, rebuild
from .progress import positions_bar, stderr


class RichReporter:
    """The rebuild's phases as a progress bar: positions done of the head, events/s, ETA."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def phase(self, description: str, total: int | None, completed: int = 0) -> None:
        if self._task is not None:
            self._progress.stop_task(self._task)
        self._task = self._progress.add_task(f"{description:<12}", total=total, completed=completed)

    def advance(self, positions: float) -> None:
        if self._task is not None:
            self._progress.advance(self._task, positions)


class RebuildSummary(msgspec.Struct, rename="camel"):
    """What `rebuild --json` prints: one object."""

    names: list[str]
    position: int  # the log position the swapped-in tables stand at
    rows: dict[str, int]
    seconds: float
    rate: float  # events/s while building

    @classmethod
    def of(cls, result: Rebuilt) -> RebuildSummary:
        return cls(
            list(result.names),
            result.position,
            dict(result.rows),
            round(result.seconds, 3),
            round(result.rate, 1),
        )


async def run_rebuild(
    dsn: str, names: Sequence[str], *, chunk: int, quiet: bool, as_json: bool = False
) -> int:
    """The command: rebuild, show progress, summarise. Exit status 0 once they are live."""
    console = stderr()
    try:
        with positions_bar(console, quiet=quiet) as progress:
            result = await rebuild(dsn, names, reporter=RichReporter(progress), chunk=chunk)
    except (RebuildBusy, InvalidRequest) as error:
        console.print(f"motionledger rebuild: {error}")
        return 1
    if as_json:
        sys.stdout.write(msgspec.json.encode(RebuildSummary.of(result)).decode() + "\n")
        return 0
    rows = ", ".join(f"{name} {count:,}" for name, count in result.rows.items())
    console.print(
        f"rebuilt {', '.join(result.names)} at position {result.position:,} in "
        f"{result.seconds:.1f}s ({result.rate:,.0f} events/s while building); rows now: {rows}"
    )
    return 0
