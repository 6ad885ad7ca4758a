"""What `make bench` shows while it runs: each finished phase with its duration, on a
terminal only, and nothing with --quiet or off a terminal."""

from __future__ import annotations

import io
import re

from bench.progress import parts_of, phases
from rich.console import Console


def shown(*, terminal: bool, quiet: bool = False) -> tuple[str, dict[str, float]]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, color_system=None)
    timed: dict[str, float] = {}
    with phases(console, parts_of({"rebuild"}), quiet=quiet) as bench:
        for name in ("backlog: publishing", "drain 1/1", "rebuild", "done"):
            ended, seconds = bench.start(name)
            timed[ended] = seconds
            if ended != "starting":
                bench.part_done()
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()), timed


def test_each_finished_phase_is_a_line_with_its_duration_on_a_terminal() -> None:
    text, timed = shown(terminal=True)
    assert list(timed) == ["starting", "backlog: publishing", "drain 1/1", "rebuild"]
    for name in ("backlog: publishing", "drain 1/1", "rebuild"):
        assert re.search(rf"✓ {re.escape(name)}  \d+\.\d s", text), text
    assert "✓ starting" not in text
    assert "3/3 done" in text  # the live line counts the parts


def test_nothing_is_shown_off_a_terminal_or_when_quiet() -> None:
    assert shown(terminal=False)[0] == ""
    assert shown(terminal=True, quiet=True)[0] == ""


def test_the_parts_follow_the_chosen_ones() -> None:
    assert parts_of(set()) == 2
    assert parts_of({"rebuild", "load", "big"}) == 6
