"""`motionledger verify`: the hash chain recomputed, with a progress bar (for a person), and
what it says: sentences, or one JSON object with --json (the head hash is for automation)."""

from __future__ import annotations

import sys
from typing import TextIO

import msgspec

from ..adapters.postgres import chain
from ..adapters.postgres.database import connect, discard
from ..errors import InvalidRequest
from ..services.verify import Verification, verify_chain
from .progress import positions_bar, stderr


class BreakJson(msgspec.Struct):
    position: int
    problem: str


class VerifyJson(msgspec.Struct, rename="camel"):
    """What `verify --json` prints: one object. `headHash` is the chain's hash at
    `lastPosition` (hex): anchor it elsewhere, a later verify ending below it or at another
    hash means rows were removed or rewritten."""

    ok: bool
    from_position: int
    last_position: int
    checked: int
    head_hash: str
    seconds: float
    rate: float  # events/s
    broken: BreakJson | None

    @classmethod
    def of(cls, report: Verification) -> VerifyJson:
        broken = report.broken
        return cls(
            ok=report.ok,
            from_position=report.from_position,
            last_position=report.last_position,
            checked=report.checked,
            head_hash=report.last_hash.hex(),
            seconds=round(report.seconds, 3),
            rate=round(report.rate, 1),
            broken=None if broken is None else BreakJson(broken.position, broken.problem),
        )


async def run_verify(
    dsn: str,
    *,
    from_position: int = 1,
    as_json: bool = False,
    quiet: bool = False,
    out: TextIO | None = None,
) -> int:
    """The command: 0 when the chain holds, 1 naming the first bad position, 2 on misuse."""
    out = out or sys.stdout
    conn = await connect(dsn)
    try:
        with positions_bar(stderr(), quiet=quiet) as progress:
            task = progress.add_task("verify", total=None)
            if not progress.disable:  # the bar's length: one more query, for a person only
                head = await chain.head_position(conn)
                progress.update(task, total=max(head - from_position + 1, 0))
            report = await verify_chain(
                conn,
                from_position=from_position,
                progress=lambda checked, _: progress.update(task, completed=checked),
            )
    except InvalidRequest as error:
        print(f"motionledger verify: {error}", file=sys.stderr)
        return 2
    finally:
        discard(conn)
    if as_json:
        out.write(msgspec.json.encode(VerifyJson.of(report)).decode() + "\n")
        return 0 if report.ok else 1
    span = (
        f"positions {report.from_position}..{report.last_position}"
        if report.checked
        else "no positions"
    )
    rate = f"{report.checked} events in {report.seconds:.2f} s ({report.rate:,.0f} events/s)"
    if report.broken is not None:
        print(
            f"TAMPERED at position {report.broken.position}: {report.broken.problem}\n"
            f"  verified before it: {span}; {rate}",
            file=out,
        )
        return 1
    print(f"chain intact: {span}; {rate}", file=out)
    if report.checked:
        print(
            f"  head hash {report.last_hash.hex()} (record it elsewhere: a later verify that "
            "ends below it, or at another hash, means rows were removed or rewritten)",
            file=out,
        )
    return 0
