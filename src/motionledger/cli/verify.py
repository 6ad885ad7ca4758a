"""`motionledger verify`: the hash chain recomputed, and what it says, for a person."""

from __future__ import annotations

import sys
from typing import TextIO

from ..adapters.postgres.database import connect, discard
from ..errors import InvalidRequest
from ..services.verify import verify_chain


async def run_verify(dsn: str, *, from_position: int = 1, out: TextIO | None = None) -> int:
    """The command: 0 when the chain holds, 1 naming the first bad position, 2 on misuse."""
    out = out or sys.stdout
    conn = await connect(dsn)
    try:
        try:
            report = await verify_chain(conn, from_position=from_position)
        except InvalidRequest as error:
            print(f"motionledger verify: {error}", file=sys.stderr)
            return 2
    finally:
        discard(conn)
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
