"""The six read tables, each declared once and derived from the event Structs.

A `Projection` names the table, its key, and the events that feed it with their role:

- CREATE: the event makes the row (the judge guarantees it does not exist yet);
- UPSERT: the event makes the row, or patches it if it exists;
- PATCH: the event patches an existing row.

Every field of a feeding event becomes the column of the same (snake_case) name, typed
from the Struct's annotation; `defaults` fill a null field, `recorded` columns take the
time the log recorded the event. A patch leaves a column alone where its event's field is
absent or null. From this one declaration come the pure reducer (`domain.reducers`), the
projector's set-based SQL (`adapters.postgres.projection_sql`), the HTTP row Structs
(`domain.rows`), and a test that holds the migration's tables to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from .events import (
    TAG_OF,
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    Event,
    MusicMoment,
    SessionCompleted,
    SessionStarted,
    SessionUpdated,
    StillCreated,
    StillUpdated,
)


class Role(enum.Enum):
    CREATE = "create"
    UPSERT = "upsert"
    PATCH = "patch"


class _Recorded:
    """Marker: the time the log recorded the event (epoch ms)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RECORDED"


RECORDED: Final = _Recorded()

# Columns every row carries besides its events' fields.
ID: Final = "id"
CREATED_AT: Final = "created_at"
UPDATED_AT: Final = "updated_at"
POSITION: Final = "position"  # log position of the event that created the row


@dataclass(frozen=True, slots=True)
class Source:
    """How one event type sets one column: its field (or none), and what a null becomes."""

    field: str | None
    default: Any = None  # None: a null stays null (and leaves a patched column alone)

    def value(self, event: Event, recorded_ms: int) -> Any:
        value = getattr(event, self.field) if self.field is not None else None
        if value is None and self.default is not None:
            return recorded_ms if self.default is RECORDED else self.default
        return value


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # snake_case, as in Postgres
    json_name: str  # camelCase, as on the wire
    sql_type: str  # text | bigint | double precision | boolean | jsonb
    nullable: bool
    # set when the row is made and never patched (the key and the session it belongs to)
    fixed: bool = False


@dataclass(frozen=True)
class Projection:
    name: str
    key: tuple[str, ...]  # columns joined by ':' make the row's id
    roles: dict[type[Event], Role]
    columns: tuple[Column, ...]  # the event-derived columns, in declaration order
    sources: dict[type[Event], dict[str, Source]]  # event type -> column -> source
    body_fields: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (json, sql)

    @property
    def table(self) -> str:
        return f"production.{self.name}"

    @property
    def event_types(self) -> tuple[type[Event], ...]:
        return tuple(self.roles)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(TAG_OF[cls] for cls in self.roles)

    @property
    def creators(self) -> tuple[type[Event], ...]:
        return tuple(cls for cls, role in self.roles.items() if role is not Role.PATCH)

    @property
    def patches(self) -> bool:
        """Whether rows change after they are made (else every event is a new row)."""
        return any(role is not Role.CREATE for role in self.roles.values())

    @property
    def upserts(self) -> bool:
        return Role.UPSERT in self.roles.values()

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Every stored column, in table order."""
        return (
            Column(ID, "_id", "text", False, fixed=True),
            *self.columns,
            Column(CREATED_AT, "createdAt", "bigint", False, fixed=True),
            Column(UPDATED_AT, "updatedAt", "bigint", False),
            Column(POSITION, "position", "bigint", False, fixed=True),
        )

    def column(self, name: str) -> Column:
        return next(c for c in self.all_columns if c.name == name)

    def row_id(self, event: Event) -> str:
        return ":".join(str(getattr(event, part)) for part in self.key)


# -- deriving a projection from its events --------------------------------------------
_SQL_TYPES: Final[dict[type[mi.Type], str]] = {
    mi.StrType: "text",
    mi.LiteralType: "text",
    mi.IntType: "bigint",
    mi.FloatType: "double precision",
    mi.BoolType: "boolean",
    mi.AnyType: "jsonb",
}


def _sql_type(info: mi.Type) -> tuple[str, bool]:
    """(SQL type, nullable) of a field's type."""
    nullable = False
    if isinstance(info, mi.UnionType):
        others = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(others) != 1:
            raise TypeError(f"cannot store a union of {info.types}")
        info, nullable = others[0], True
    if isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.AnyType):
        return "jsonb", True
    try:
        return _SQL_TYPES[type(info)], nullable
    except KeyError:
        raise TypeError(f"no column type for {info}") from None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def derive(
    name: str,
    *,
    key: tuple[str, ...],
    roles: dict[type[Event], Role],
    defaults: dict[type[Event], dict[str, Any]] | None = None,
    recorded: dict[str, type[Event]] | None = None,
) -> Projection:
    """Build a projection's columns and sources from its events' Structs."""
    defaults = defaults or {}
    recorded = recorded or {}
    keep_event_id = "event_id" in key
    fixed = {*key, "session_id"}
    creators = [cls for cls, role in roles.items() if role is not Role.PATCH]
    order: list[str] = []
    types: dict[str, str] = {}
    body_fields: dict[str, tuple[str, str]] = {}
    sources: dict[type[Event], dict[str, Source]] = {cls: {} for cls in roles}
    for cls in roles:
        for info in msgspec.structs.fields(cls):
            if info.name == "event_id" and not keep_event_id:
                continue
            sql_type, _ = _sql_type(mi.type_info(info.type))
            if types.setdefault(info.name, sql_type) != sql_type:
                raise TypeError(f"{name}.{info.name}: {sql_type} vs {types[info.name]}")
            if info.name not in order:
                order.append(info.name)
            body_fields[info.name] = (info.encode_name, sql_type)
            sources[cls][info.name] = Source(info.name, defaults.get(cls, {}).get(info.name))
    for column_name, cls in recorded.items():
        order.append(column_name)
        types[column_name] = "bigint"
        sources[cls][column_name] = Source(None, RECORDED)

    def never_null(column_name: str) -> bool:
        """Every creating event gives it a value (a required field or a default)."""
        for cls in creators:
            source = sources[cls].get(column_name)
            if source is None:
                return False
            if source.default is None and source.field is not None:
                info = next(f for f in msgspec.structs.fields(cls) if f.name == source.field)
                if not info.required or _sql_type(mi.type_info(info.type))[1]:
                    return False
            elif source.default is None:
                return False
        return True

    columns = tuple(
        Column(
            c,
            _camel(c),
            types[c],
            nullable=not never_null(c),
            fixed=c in fixed
            or not any(c in sources[cls] for cls, role in roles.items() if role is not Role.CREATE),
        )
        for c in order
    )
    return Projection(name, key, dict(roles), columns, sources, body_fields)


# -- the six read tables ---------------------------------------------------------------
SESSIONS: Final = derive(
    "sessions",
    key=("session_id",),
    roles={
        SessionStarted: Role.CREATE,
        SessionUpdated: Role.PATCH,
        SessionCompleted: Role.PATCH,
    },
    defaults={
        SessionStarted: {"status": "setup", "started_at": RECORDED},
        SessionCompleted: {"status": "complete"},
    },
    recorded={"completed_at": SessionCompleted},
)
CAMERAS: Final = derive(
    "cameras",
    key=("session_id", "camera_id"),
    roles={CameraUpserted: Role.UPSERT, CameraStateChanged: Role.PATCH},
)
DIRECTOR_EVENTS: Final = derive(
    "director_events", key=("event_id",), roles={DirectorEvent: Role.CREATE}
)
STILL_CANDIDATES: Final = derive(
    "still_candidates",
    key=("still_candidate_id",),
    roles={StillCreated: Role.CREATE, StillUpdated: Role.PATCH},
    defaults={StillCreated: {"is_favorite": False, "selected_for_edit": False}},
)
MUSIC_MOMENTS: Final = derive("music_moments", key=("event_id",), roles={MusicMoment: Role.CREATE})
ASSETS: Final = derive("assets", key=("asset_id",), roles={AssetCreated: Role.CREATE})

PROJECTIONS: Final[tuple[Projection, ...]] = (
    SESSIONS,
    CAMERAS,
    DIRECTOR_EVENTS,
    STILL_CANDIDATES,
    MUSIC_MOMENTS,
    ASSETS,
)
BY_NAME: Final[dict[str, Projection]] = {p.name: p for p in PROJECTIONS}
NAMES: Final[tuple[str, ...]] = tuple(BY_NAME)
# the projection each event type feeds (every event type feeds exactly one)
FED_BY: Final[dict[type[Event], Projection]] = {
    cls: projection for projection in PROJECTIONS for cls in projection.roles
}


def unknown(names: list[str] | tuple[str, ...]) -> list[str]:
    """Those of `names` that name no projection."""
    return [n for n in names if n not in BY_NAME]


def select(names: list[str] | tuple[str, ...]) -> tuple[Projection, ...]:
    """Projections by table name (all of them for none), in canonical order; the names
    must be known (see `unknown`)."""
    return tuple(p for p in PROJECTIONS if p.name in names) if names else PROJECTIONS
