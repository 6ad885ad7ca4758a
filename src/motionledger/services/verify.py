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

import msgspec

from ..adapters.postgres import chain
from ..adapters.postgres.database import Connection
from ..domain.canonical import GENESIS_HASH, canonical_json
from ..domain.events import EVENT_TYPE_BY_TAG
from ..errors import InvalidRequest, LedgerError

PAGE_ROWS: Final = 10_000
_DECODE: Final = msgspec.json.Decoder().decode
_SORTED: Final = msgspec.json.Encoder(order="sorted")
# The log's other columns are copies of body fields, kept for indexes; an edit to one of them
# is as much a tamper as an edit to the body. The entity field mirrors Event.entity_id.
_LANE: Final = {tag: cls.lane for tag, cls in EVENT_TYPE_BY_TAG.items()}
_ENTITY: Final = {
    tag: next(
        (
            f
            for f in ("stillCandidateId", "assetId", "cameraId")
            if f in cls.__struct_encode_fields__
        ),
        None,
    )
    for tag, cls in EVENT_TYPE_BY_TAG.items()
}


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


_CHANGED: Final = (
    "stored hash does not match the recomputed chain: this row's eventId, body or hash was "
    "changed, or the row was put here from elsewhere"
)


def check_rows(
    rows: Sequence[Any], expected: int, previous: bytes
) -> tuple[int, bytes, Break | None]:
    """Check consecutive rows (in `chain.COLUMNS` order) starting at position `expected`.

    Returns the next expected position, the last good hash, and the first break if any.
    """
    sha256, decode, encode = hashlib.sha256, _DECODE, _SORTED.encode
    for position, event_id, body, stored, lane, kind, session, entity, timestamp in rows:
        if position != expected:
            return expected, previous, Break(expected, _gap(expected, position))
        head = previous + position.to_bytes(8, "big") + event_id.encode() + b"\n"
        try:
            value = decode(body)
            # jsonb prints no exponents and no negative zero, so a body read back from it is
            # already canonical once its keys are sorted; canonical_json's float rewriting
            # is needed (and tried) only when that does not match.
            digest = sha256(head + encode(value)).digest()
            if digest != stored:
                digest = sha256(head + canonical_json(value)).digest()
            copies = (
                value["eventId"],
                _LANE.get(value["type"]),
                value["type"],
                value["sessionId"],
                value.get(_ENTITY.get(value["type"]) or ""),
                value.get("timestampMs"),
            )
        except (msgspec.DecodeError, UnicodeEncodeError, ValueError, KeyError, TypeError) as error:
            return expected, previous, Break(position, f"stored body cannot be read: {error!r}")
        if digest != stored:
            return expected, previous, Break(position, _CHANGED)
        if copies != (event_id, lane, kind, session, entity, timestamp):
            problem = (
                "columns event_id/lane/type/session_id/entity_id/timestamp_ms disagree with "
                f"the body: {(event_id, lane, kind, session, entity, timestamp)} vs {copies}"
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
    conn: Connection,
    *,
    from_position: int = 1,
    page_rows: int = PAGE_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> Verification:
    """Recompute the chain from `from_position` (trusting the stored hash just before it)."""
    started = time.perf_counter()
    if from_position < 1:
        raise InvalidRequest(f"positions start at 1, not {from_position}")
    previous = GENESIS_HASH
    if from_position > 1:
        head = await chain.head_position(conn)
        if from_position - 1 > head:
            raise InvalidRequest(
                f"the log ends at position {head}; nothing to verify from {from_position}"
            )
        anchor = await chain.stored_hash(conn, from_position - 1)
        if anchor is None:
            missing = Break(from_position - 1, f"position {from_position - 1} is missing")
            return Verification(from_position, 0, from_position - 2, b"", 0.0, missing)
        previous = anchor

    expected, checked = from_position, 0
    broken: Break | None = None
    rows = await chain.page(conn, expected, page_rows)
    while rows:
        following: asyncio.Task[list[Any]] | None = None
        if len(rows) == page_rows:
            # ask for the next page now: Postgres reads and encodes it while we hash this one
            following = asyncio.ensure_future(chain.page(conn, rows[-1][0] + 1, page_rows))
        before = expected
        # hashed on a worker thread, so this loop keeps draining the next page meanwhile
        expected, previous, broken = await asyncio.to_thread(check_rows, rows, expected, previous)
        checked += expected - before
        if progress is not None:
            progress(checked, expected - 1)
        if broken is not None or following is None:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, LedgerError):
                    await following
            break
        rows = await following
    seconds = time.perf_counter() - started
    return Verification(from_position, checked, expected - 1, previous, seconds, broken)
