"""`motionledger verify`: recompute the log's hash chain and name the first row that breaks it.

Every row's hash is sha256(previous hash || position (8 bytes, big-endian) || eventId ||
"\\n" || canonical body), with 32 zero bytes before position 1 (see domain/canonical.py). The
stored body is jsonb, so it is decoded and re-encoded canonically before hashing; anything
edited behind the database's triggers — a body, an eventId, a hash, a removed or renumbered
row — makes the recomputed chain disagree from that position on.

Speed matters (a long shoot's log is millions of rows): rows come in large keyset pages, the
next page is already on its way while this one is hashed (Postgres encodes on the other
core), and the per-row work is one decode, one encode and one sha256 call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import msgspec

from ..adapters.postgres import chain
from ..domain.canonical import GENESIS_HASH, canonical_json

PAGE_ROWS: Final = 20_000
_DECODE: Final = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Break:
    """The first position at which the log is not what its chain says."""

    position: int
    problem: str


@dataclass(frozen=True, slots=True)
class Verification:
    from_position: int
    checked: int  # rows whose hash was recomputed
    last_position: int  # the last position that verified (from_position - 1 if none)
    last_hash: bytes  # the chain's hash at last_position: anchor it elsewhere to catch truncation
    seconds: float
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def rate(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0


def check_rows(
    rows: Sequence[Any], expected: int, previous: bytes
) -> tuple[int, bytes, Break | None]:
    """Check consecutive rows `(position, event_id, body, hash)` starting at `expected`.

    Returns the next expected position, the last good hash, and the first break if any.
    """
    sha256 = hashlib.sha256
    decode, canonical = _DECODE, canonical_json
    for position, event_id, body, stored in rows:
        if position != expected:
            return expected, previous, Break(expected, _gap(expected, position))
        try:
            text = canonical(decode(body))
        except (msgspec.DecodeError, UnicodeEncodeError, ValueError) as error:
            return expected, previous, Break(position, f"stored body cannot be read: {error}")
        digest = sha256(
            previous + position.to_bytes(8, "big") + event_id.encode() + b"\n" + text
        ).digest()
        if digest != stored:
            problem = (
                "stored hash does not match the recomputed chain: this row's eventId, body "
                "or hash was changed, or the row was put here from elsewhere"
            )
            return expected, previous, Break(position, problem)
        previous = digest
        expected += 1
    return expected, previous, None


def _gap(expected: int, found: int) -> str:
    if found < expected:
        return f"position {found} appears again after {expected - 1}"
    missing = f"{expected}" if found == expected + 1 else f"{expected}..{found - 1}"
    return f"position {missing} is missing (the next row is at {found})"


async def verify_chain(
    conn: asyncpg.Connection,
    *,
    from_position: int = 1,
    page_rows: int = PAGE_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> Verification:
    """Recompute the chain from `from_position` (trusting the stored hash just before it)."""
    started = time.perf_counter()
    from_position = max(1, from_position)
    previous: bytes | None = GENESIS_HASH
    if from_position > 1:
        previous = await chain.stored_hash(conn, from_position - 1)
    if previous is None:
        broken = Break(from_position - 1, f"position {from_position - 1} is missing")
        return Verification(from_position, 0, from_position - 2, b"", 0.0, broken)

    expected, checked = from_position, 0
    broken: Break | None = None
    rows = await chain.page(conn, expected, page_rows)
    while rows:
        following: asyncio.Task[list[Any]] | None = None
        if len(rows) == page_rows:
            # ask for the next page now: Postgres reads and encodes it while we hash this one
            following = asyncio.ensure_future(chain.page(conn, rows[-1][0] + 1, page_rows))
            await asyncio.sleep(0)
        before = expected
        expected, previous, broken = check_rows(rows, expected, previous)
        checked += expected - before
        if progress is not None:
            progress(checked, expected - 1)
        if broken is not None or following is None:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                    await following
            break
        rows = await following
    seconds = time.perf_counter() - started
    return Verification(from_position, checked, expected - 1, previous, seconds, broken)
