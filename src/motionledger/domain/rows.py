"""What the query endpoint answers, as Structs derived from the projection declarations.

The rows themselves are built as JSON by Postgres (see `adapters.postgres.projection_sql.
row_fields`, derived from the same declarations); these Structs document them in the OpenAPI
schema and let the tests hold every answer to its declared shape.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from .projections import (
    ASSETS,
    CAMERAS,
    DIRECTOR_EVENTS,
    MUSIC_MOMENTS,
    PROJECTIONS,
    SESSIONS,
    STILL_CANDIDATES,
    Projection,
)

_PYTHON: Final[dict[str, Any]] = {
    "text": str,
    "bigint": int,
    "double precision": float,
    "boolean": bool,
    "jsonb": Any,
}
_SINGULAR: Final = {
    "sessions": "Session",
    "cameras": "Camera",
    "director_events": "DirectorEvent",
    "still_candidates": "StillCandidate",
    "music_moments": "MusicMoment",
    "assets": "Asset",
}


def row_struct(projection: Projection) -> type[msgspec.Struct]:
    """`{_id, _creationTime, <the events' fields>, createdAt, updatedAt}` for one table."""
    fields: list[tuple[str, Any]] = [("id", str), ("creation_time", int)]
    rename = {"id": "_id", "creation_time": "_creationTime"}
    for column in projection.columns:
        python = _PYTHON[column.sql_type]
        nullable = column.nullable and python is not Any
        fields.append((column.name, python | None if nullable else python))
        rename[column.name] = column.json_name
    fields += [("created_at", int), ("updated_at", int)]
    rename |= {"created_at": "createdAt", "updated_at": "updatedAt"}
    return msgspec.defstruct(
        f"{_SINGULAR[projection.name]}Row",
        fields,
        rename=rename,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


ROWS: Final[dict[str, type[msgspec.Struct]]] = {p.name: row_struct(p) for p in PROJECTIONS}
SessionRow: Final = ROWS[SESSIONS.name]
CameraRow: Final = ROWS[CAMERAS.name]
DirectorEventRow: Final = ROWS[DIRECTOR_EVENTS.name]
StillCandidateRow: Final = ROWS[STILL_CANDIDATES.name]
MusicMomentRow: Final = ROWS[MUSIC_MOMENTS.name]
AssetRow: Final = ROWS[ASSETS.name]

Timeline: Final = msgspec.defstruct(
    "Timeline",
    [
        ("session", SessionRow),
        ("cameras", list[CameraRow]),  # type: ignore[valid-type]
        ("director_events", list[DirectorEventRow]),  # type: ignore[valid-type]
        ("still_candidates", list[StillCandidateRow]),  # type: ignore[valid-type]
        ("music_moments", list[MusicMomentRow]),  # type: ignore[valid-type]
        ("assets", list[AssetRow]),  # type: ignore[valid-type]
    ],
    rename="camel",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    module=__name__,
)
EventsPage: Final = msgspec.defstruct(
    "EventsPage",
    [
        ("page", list[DirectorEventRow]),  # type: ignore[valid-type]
        ("is_done", bool),
        ("continue_cursor", str),
    ],
    rename="camel",
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    module=__name__,
)


class PendingWrite(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A write not decided within the wait budget: it is in the stream and will be judged."""

    event_id: str  # of a batch: its last event
    pending: bool
    event_ids: list[str] | None = None  # of a batch: all of its events, in order
