"""Writing events straight into the log (no broker) and reading read tables back, for the
projection and rebuild tests: the projectors only ever read `ledger.events`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from motionledger.adapters.postgres import ledger, log_rows
from motionledger.domain.canonical import chain_hash
from motionledger.domain.decoding import Decoded, decode_event
from motionledger.domain.events import DECODER, AnyEvent
from motionledger.domain.projections import PROJECTIONS, Projection
from motionledger.domain.reducers import Logged

_clock = itertools.count()
BASE_TIME = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def next_time() -> datetime:
    """Recorded times that increase (with sub-millisecond parts, to test the rounding)."""
    return BASE_TIME + timedelta(microseconds=next(_clock) * 1377)


async def append(
    conn: asyncpg.Connection | asyncpg.Pool,
    events: list[dict[str, Any]],
    *,
    recorded_at: datetime | None = None,
) -> list[Logged]:
    """Append plain-JSON events to the log at the next positions; returns them as logged."""
    if not events:
        return []
    async with conn.acquire() if isinstance(conn, asyncpg.Pool) else _same(conn) as c:
        head = await ledger.head(c)
        position, previous = head.position, head.hash
        rows, logged = [], []
        for item in events:
            decoded = decode_event(msgspec.json.encode(item), 1 << 20)
            assert isinstance(decoded, Decoded), decoded
            event: AnyEvent = DECODER.decode(decoded.body)  # as the log holds it
            position += 1
            previous = chain_hash(previous, position, event.event_id, decoded.body)
            at = recorded_at or next_time()
            rows.append(
                log_rows.event_row(position, event, decoded.body, at, 1, position, at, previous)
            )
            logged.append(Logged(position, at, event))
        await c.copy_records_to_table(
            "events", schema_name="ledger", records=rows, columns=log_rows.EVENT_COLUMNS
        )
    return logged


class _same:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        return None


def _plain(projection: Projection, record: asyncpg.Record) -> dict[str, Any]:
    row = dict(record)
    for column in projection.all_columns:
        if column.sql_type == "jsonb" and row[column.name] is not None:
            row[column.name] = msgspec.json.decode(row[column.name])
    return row


async def table_rows(
    conn: asyncpg.Connection, projection: Projection, *, where: str = "", args: tuple = ()
) -> list[dict[str, Any]]:
    """A read table's rows as plain values, ordered by id (byte order, as Python sorts)."""
    columns = ", ".join(c.name for c in projection.all_columns)
    rows = await conn.fetch(
        f'SELECT {columns} FROM {projection.table} {where} ORDER BY id COLLATE "C"', *args
    )
    return [_plain(projection, row) for row in rows]


async def table_dump(conn: asyncpg.Connection, name: str) -> str:
    """Every byte of a table's contents, in id order: equal dumps mean identical tables."""
    return await conn.fetchval(
        f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.id COLLATE \"C\"), '') "
        f"FROM production.{name} t"
    )


async def all_dumps(conn: asyncpg.Connection) -> dict[str, str]:
    return {p.name: await table_dump(conn, p.name) for p in PROJECTIONS}


# -- the contract suite's logs: each runs through the twin and through Postgres ------------
def scenarios() -> dict[str, list[dict[str, Any]]]:
    """Valid logs (the judge would accept every event) that exercise each rule."""
    from tests.support import events as ev

    return {
        "session_lifecycle": [
            ev.session_started("S1", title="first", metadata={"k": [1, 2]}),
            ev.session_updated("S1", status="rolling", notes="go"),
            ev.session_updated("S1", title=None, directorMode="pose"),
            ev.session_completed("S1"),
            ev.session_started("S2", status="rolling", startedAt=1234, projectSlug="p"),
            ev.session_completed("S2", status="cancelled", notes="rain"),
            ev.session_updated("S2", metadata={"after": True}),
        ],
        "camera_upserts_patch": [
            ev.session_started("S1"),
            ev.camera_upserted("S1", "c1", deviceName="iPhone", positionHint="left"),
            ev.camera_state("S1", "c1", isActive=False),
            ev.camera_upserted("S1", "c1", role="wide", priorityWeight=0.25, isActive=True),
            ev.camera_state("S1", "c1", role="detail", metadata={"x": 1}),
            ev.camera_upserted("S1", "c2", isWideFallback=True),
            ev.camera_state("S1", "c2", priorityWeight=3.5),
            ev.session_started("S2"),
            ev.camera_upserted("S2", "c1", sourceType="insta360_x4"),
        ],
        "director_and_music": [
            ev.session_started("S1"),
            *[
                ev.director("S1", 100 + i % 7, "cut", cameraId=f"c{i % 3}", score=i / 10)
                for i in range(12)
            ],
            ev.director("S1", 5, "hero_pose_marker", metadata={"pose": "arms-up"}, reason="r"),
            # numbers jsonb rewrites, and text it escapes: the twin must agree all the same
            ev.director("S1", 6, "cut", metadata={"big": 1e16, "z": -0.0, "s": "ü\u2028'\""}),
            *[ev.music("S1", 50 * i, tempo=120.0 + i, section="drop") for i in range(5)],
            ev.music("S1", 7, audioSnapshot={"peaks": [0.1, 0.2]}, motionSignature="sig"),
        ],
        "stills": [
            ev.session_started("S1"),
            ev.still_created("S1", "st1", score=0.25, poseLabel="lean"),
            ev.still_updated("S1", "st1", isFavorite=True, score=0.75),
            ev.still_updated("S1", "st1", poseLabel=None, selectedForEdit=True),
            ev.still_created("S1", "st2", isFavorite=True, sourceEventId="e-1", imagePath="/a"),
            ev.still_updated("S1", "st2", isFavorite=False, metadata={"m": "n"}),
            ev.still_created("S1", "st3", camera="cam2", timestampMs=99),
        ],
        "assets": [
            ev.session_started("S1"),
            ev.asset("S1", "a1", source="post", status="draft", metadata=[1, "two"]),
            ev.asset("S1", "a2", assetType="hero_still"),
            ev.session_started("S2"),
            ev.asset("S2", "a3"),
        ],
        "interleaved": [
            ev.session_started("S1"),
            ev.camera_upserted("S1", "c1"),
            ev.still_created("S1", "st1"),
            ev.session_updated("S1", status="paused"),
            ev.camera_state("S1", "c1", isActive=False),
            ev.director("S1", 1, "cut", cameraId="c1"),
            ev.still_updated("S1", "st1", score=0.9),
            ev.camera_upserted("S1", "c1", deviceName="renamed"),
            ev.session_updated("S1", status="rolling", title="t"),
            ev.asset("S1", "a1"),
            ev.music("S1", 3),
            ev.still_updated("S1", "st1", score=0.1, isFavorite=True),
            ev.session_completed("S1", notes="done"),
        ],
    }


async def twin_from_log(conn: asyncpg.Connection) -> Any:
    """The twin fed with the whole log as Postgres holds it."""
    from motionledger.domain.reducers import Twin

    rows = await conn.fetch(
        "SELECT position, recorded_at, body FROM ledger.events ORDER BY position"
    )
    return Twin().feed(
        Logged(r["position"], r["recorded_at"], DECODER.decode(r["body"])) for r in rows
    )


async def assert_tables_equal_twin(conn: asyncpg.Connection, twin: Any) -> None:
    for projection in PROJECTIONS:
        got = await table_rows(conn, projection)
        assert got == twin.rows(projection.name), projection.name
