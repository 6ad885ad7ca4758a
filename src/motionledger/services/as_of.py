"""`GET /production/session/timeline?asOf=`: the timeline as the ledger held it then.

Only log rows recorded at or before asOf count: they are the positions up to the one asOf
stands for (recorded times never go backwards along positions). Rows that never change
(director events, music moments, assets) are the read tables' rows logged by then. A
session, camera or still patched since is folded again from its events logged by then,
through the twin's own reducer, so a camera deactivated later is still active as of before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from ..adapters.postgres import as_of as sql
from ..adapters.postgres.database import Connection, acquired
from ..domain.events import DECODER
from ..domain.projections import CAMERAS, FED_BY, NAMES, SESSIONS, STILL_CANDIDATES, Projection
from ..domain.reducers import Row, Table, apply, recorded_ms
from ..domain.rows import ROWS
from .derived import Derived, check_as_of
from .positions import Answer


def fold(records: Iterable[Mapping[str, Any]]) -> dict[str, Table]:
    """The rows the logged events (in position order) make, by table name."""
    tables: dict[str, Table] = {name: {} for name in NAMES}
    for record in records:
        event = DECODER.decode(record["body"])
        projection = FED_BY[type(event)]
        apply(
            projection,
            tables[projection.name],
            event,
            record["position"],
            recorded_ms(record["recorded_at"]),
        )
    return tables


def row_json(projection: Projection, row: Row) -> bytes:
    """A folded row as the read routes show it (the same Struct documents both)."""
    values = {column.name: row[column.name] for column in projection.columns}
    struct = ROWS[projection.name](
        id=row["id"],
        creation_time=row["created_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **values,
    )
    return msgspec.json.encode(struct)


def _array(items: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


async def timeline_in(
    conn: Connection, session_id: str, window: tuple[int, int], limit: int, as_of: int
) -> Answer:
    """One statement (its own snapshot) for the rows; the log's events of the rows patched
    since, if any, are the same in any later snapshot."""
    rows = await sql.timeline_rows(conn, session_id, window, limit, as_of, list(NAMES))
    position = rows.position
    check_as_of(session_id, as_of, position, rows.checkpoint, rows.session_position)
    assert rows.session is not None
    session, cameras = rows.session.encode(), rows.cameras.encode()
    if rows.session_changed or rows.cameras_changed:
        tables = fold(await sql.session_events(conn, session_id, position))
        session = row_json(SESSIONS, tables[SESSIONS.name][session_id])
        by_camera = sorted(tables[CAMERAS.name].values(), key=lambda r: r["camera_id"])
        cameras = _array([row_json(CAMERAS, r) for r in by_camera])
    stills = [s.encode() for s in rows.stills]
    if rows.stills_changed:
        refolded = fold(await sql.still_events(conn, rows.stills_changed, position))
        table = refolded[STILL_CANDIDATES.name]
        for i, still_id in enumerate(rows.still_ids):
            if still_id in table:
                stills[i] = row_json(STILL_CANDIDATES, table[still_id])
    body = (
        b'{"session":'
        + session
        + b',"cameras":'
        + cameras
        + b',"directorEvents":'
        + rows.director_events.encode()
        + b',"stillCandidates":'
        + _array(stills)
        + b',"musicMoments":'
        + rows.music_moments.encode()
        + b',"assets":'
        + rows.assets.encode()
        + b"}"
    )
    return body, position


async def timeline_as_of(
    derived: Derived, session_id: str, window: tuple[int, int], limit: int, as_of: int
) -> Answer:
    async def attempt() -> Answer:
        async with acquired(derived.pool) as conn:
            return await timeline_in(conn, session_id, window, limit, as_of)

    return await derived.caught_up(attempt)


class DerivedReads(Derived):
    """The derived reads, and the timeline as of a time: what the endpoint is given."""

    async def timeline_as_of(
        self, session_id: str, window: tuple[int, int], limit: int, as_of: int
    ) -> Answer:
        return await timeline_as_of(self, session_id, window, limit, as_of)
