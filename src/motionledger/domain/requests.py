"""The bodies of the write routes, derived from the event Structs.

A write's body is its event's fields minus `type`. Ids the caller leaves out are made by
the server (UUIDv7): always the `eventId`, and the id of the entity a creating event makes.
Each body Struct carries the event's own annotations, so it validates exactly as the judge
will (strictly: no "true" for a bool, no unknown field) and documents itself in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from .canonical import canonical_json
from .events import (
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    EntityId,
    Event,
    MusicMoment,
    SessionCompleted,
    SessionStarted,
    SessionUpdated,
    StillCreated,
    StillUpdated,
)
from .projections import FED_BY, Projection
from .uuid7 import uuid7

ROW: Final = "row"  # the route answers with the read-table row the event produced


def _pascal(path: str) -> str:
    return "".join(part.title() for part in path.replace("/", "-").split("-"))


def body_struct(
    name: str,
    event: type[Event],
    *,
    optional: tuple[str, ...] = (),
    fixed: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> type[msgspec.Struct]:
    """The event's fields as a request body: `optional` ones may be left out (the server
    fills them in), `fixed` ones may be left out or given only with their one value."""
    fixed = fixed or {}
    fields: list[tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(event):
        if info.name in drop:
            continue
        if info.name in fixed:
            fields.append((info.name, Literal[fixed[info.name]] | None, None))
        elif info.name in optional:
            fields.append((info.name, info.type | None, None))
        elif info.required:
            fields.append((info.name, info.type, msgspec.NODEFAULT))
        else:
            fields.append((info.name, info.type, info.default))
    return msgspec.defstruct(
        name,
        [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
        kw_only=True,
        frozen=True,
        rename="camel",
        forbid_unknown_fields=True,
        module=__name__,
    )


@dataclass(frozen=True)
class Write:
    """One write route: its event, the body it takes, and what it answers with."""

    path: str
    event: type[Event]
    result: str  # the event field whose value is the answer, or ROW
    generated: tuple[str, ...] = ()  # ids the server makes when the body leaves them out
    optional: tuple[str, ...] = ()  # fields the server fills in some other way
    fixed: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    body: type[msgspec.Struct] = field(init=False)

    def __post_init__(self) -> None:
        body = body_struct(
            f"{_pascal(self.path)}Body",
            self.event,
            optional=("event_id", *self.generated, *self.optional),
            fixed=self.fixed,
        )
        object.__setattr__(self, "body", body)

    @property
    def projection(self) -> Projection:
        return FED_BY[self.event]

    def build(self, body: msgspec.Struct, make_id: Callable[[], str] = uuid7) -> Event:
        """The event a (valid) body asks for, with the ids it left out made here."""
        values = {name: getattr(body, name) for name in body.__struct_fields__}
        for name in ("event_id", *self.generated):
            if values.get(name) is None:
                values[name] = make_id()
        values.update(self.fixed)
        return self.event(**values)


WRITES: Final[tuple[Write, ...]] = (
    Write(
        "session/start",
        SessionStarted,
        "session_id",
        generated=("session_id",),
        summary="Start a session (session.started)",
    ),
    Write("session/update", SessionUpdated, "session_id", summary="Patch a session"),
    Write("session/complete", SessionCompleted, "session_id", summary="Complete a session"),
    Write(
        "camera/upsert",
        CameraUpserted,
        ROW,
        generated=("camera_id",),
        summary="Add a camera to a session, or patch it (camera.upserted)",
    ),
    Write("camera/state", CameraStateChanged, ROW, summary="Change a camera's state"),
    Write("event", DirectorEvent, "event_id", summary="Record a director event"),
    Write(
        "hero-pose",
        DirectorEvent,
        "event_id",
        fixed={"event_type": "hero_pose_marker"},
        summary="Mark a hero pose (a director.event with eventType hero_pose_marker)",
    ),
    Write(
        "still-candidate",
        StillCreated,
        "still_candidate_id",
        generated=("still_candidate_id",),
        summary="Add a still candidate (still.created)",
    ),
    Write(
        "still/update",
        StillUpdated,
        ROW,
        optional=("session_id",),
        summary="Patch a still candidate; its sessionId is taken from the still",
    ),
    Write("music-moment", MusicMoment, "event_id", summary="Record a music moment"),
    Write(
        "asset",
        AssetCreated,
        "asset_id",
        generated=("asset_id",),
        summary="Register an asset (asset.created)",
    ),
)
BY_PATH: Final[dict[str, Write]] = {w.path: w for w in WRITES}

# /production/event/batch: one sessionId for all; the items are director events without it
BatchItem: Final = body_struct(
    "EventBatchItem", DirectorEvent, optional=("event_id",), drop=("session_id",)
)
EventBatchBody: Final = msgspec.defstruct(
    "EventBatchBody",
    [
        ("session_id", EntityId),
        ("events", Annotated[list[BatchItem], Meta(min_length=1)]),  # type: ignore[valid-type]
    ],
    kw_only=True,
    frozen=True,
    rename="camel",
    forbid_unknown_fields=True,
    module=__name__,
)


def filled_in(write: Write, body: msgspec.Struct) -> frozenset[str]:
    """The fields of the event that the server filled in because the body left them out."""
    return frozenset(
        name
        for name in ("event_id", *write.generated, *write.optional)
        if getattr(body, name, None) is None
    )


def same_request(sent: Event, logged: Event, filled: frozenset[str]) -> bool:
    """Whether a write that came again asks for what the logged event is: every field the
    client sent is equal; those the server filled in (ids it made) are not compared, so a
    retried write without them is the same request."""
    if type(sent) is not type(logged):
        return False
    names = [name for name in sent.__struct_fields__ if name not in filled]
    # compared as the judge compares bodies: canonically (1, 1.0 and true are not equal)
    return canonical_json({n: getattr(sent, n) for n in names}) == canonical_json(
        {n: getattr(logged, n) for n in names}
    )
