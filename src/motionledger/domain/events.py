"""The events of the production ledger: one frozen, tagged Struct per event type.

These Structs are the single definition of every event. Decoding, validation, the stored
body, the projections, the HTTP request bodies and the OpenAPI/JSON Schema are all derived
from them, so a field is described exactly once, here.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec
from msgspec import Meta

# Entity ids become NATS subject tokens: keep them to a safe alphabet. `(?!\n)` stops `$`
# from accepting a trailing newline (Python's `$` matches before one; JSON Schema's does not).
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,128}(?!\n)$"
EntityId = Annotated[
    str,
    Meta(pattern=ID_PATTERN, description="1-128 characters from A-Z a-z 0-9 _ -"),
]
EventId = Annotated[
    str,
    Meta(
        pattern=ID_PATTERN,
        description="unique, time-ordered id made by the producer (UUIDv7 or ULID)",
    ),
]
# Epoch milliseconds, bounded to years 1970..9999 so every value fits a Postgres bigint.
MAX_EPOCH_MS: Final = 253_402_300_799_999
EpochMs = Annotated[int, Meta(ge=0, le=MAX_EPOCH_MS, description="epoch milliseconds")]
OpenEnum = Annotated[str, Meta(min_length=1, description="open enumeration: any non-empty string")]
# Any JSON value. Kept as plain Python values so they round-trip through jsonb.
Json = Any

SessionType = Literal["photoshoot_performance", "photoshoot_review", "music_demo"]
SessionStatus = Literal["setup", "rolling", "paused", "complete", "cancelled"]
StartStatus = Literal["setup", "rolling"]
EndStatus = Literal["complete", "cancelled"]
DirectorMode = Literal["motion", "pose", "reset", "manual"]
MusicMode = Literal["live_sketch", "capture_only", "disabled"]
DirectorEventType = Literal[
    "cut",
    "hold",
    "release",
    "mode_change",
    "camera_priority_change",
    "hero_pose_marker",
    "still_candidate_marker",
    "music_phrase_start",
    "music_phrase_end",
    "bar_fire",
    "tempo_update",
]
Lane = Literal["session", "camera", "director", "still", "music", "asset"]
LANES: Final[tuple[Lane, ...]] = ("session", "camera", "director", "still", "music", "asset")


class Event(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="type",
    rename="camel",
    omit_defaults=True,
    forbid_unknown_fields=True,
):
    """Fields every event carries. `type` is the tag; `lane` picks the subject."""

    lane: ClassVar[Lane]
    event_id: EventId
    session_id: EntityId

    @property
    def type_name(self) -> str:
        """The wire tag, e.g. `director.event`."""
        return TAG_OF[type(self)]

    @property
    def timestamp(self) -> int | None:
        """The event's own time on the shoot's clock, where it has one."""
        return None

    @property
    def entity_id(self) -> str | None:
        """The id of the entity below the session this event is about, if any."""
        return None


class SessionStarted(Event, frozen=True, kw_only=True, tag="session.started"):
    lane = "session"
    session_type: SessionType
    status: StartStatus | None = None
    title: str | None = None
    notes: str | None = None
    director_mode: DirectorMode | None = None
    music_mode: MusicMode | None = None
    project_slug: str | None = None
    started_at: EpochMs | None = None
    metadata: Json = None


class SessionUpdated(Event, frozen=True, kw_only=True, tag="session.updated"):
    lane = "session"
    session_type: SessionType | None = None
    status: SessionStatus | None = None
    title: str | None = None
    notes: str | None = None
    director_mode: DirectorMode | None = None
    music_mode: MusicMode | None = None
    project_slug: str | None = None
    metadata: Json = None


class SessionCompleted(Event, frozen=True, kw_only=True, tag="session.completed"):
    lane = "session"
    status: EndStatus | None = None
    notes: str | None = None


class CameraUpserted(Event, frozen=True, kw_only=True, tag="camera.upserted"):
    lane = "camera"
    camera_id: EntityId
    device_name: str | None = None
    source_type: OpenEnum
    role: OpenEnum
    priority_weight: float
    is_active: bool
    is_wide_fallback: bool | None = None
    position_hint: str | None = None
    metadata: Json = None

    @property
    def entity_id(self) -> str:
        return self.camera_id


class CameraStateChanged(Event, frozen=True, kw_only=True, tag="camera.state_changed"):
    lane = "camera"
    camera_id: EntityId
    is_active: bool | None = None
    role: OpenEnum | None = None
    priority_weight: float | None = None
    metadata: Json = None

    @property
    def entity_id(self) -> str:
        return self.camera_id


class DirectorEvent(Event, frozen=True, kw_only=True, tag="director.event"):
    lane = "director"
    timestamp_ms: EpochMs
    event_type: DirectorEventType
    camera_id: EntityId | None = None
    reason: str | None = None
    score: float | None = None
    metadata: Json = None

    @property
    def timestamp(self) -> int:
        return self.timestamp_ms

    @property
    def entity_id(self) -> str | None:
        return self.camera_id


class StillCreated(Event, frozen=True, kw_only=True, tag="still.created"):
    lane = "still"
    still_candidate_id: EntityId
    camera_id: EntityId
    timestamp_ms: EpochMs
    image_path: str | None = None
    score: float
    pose_label: str | None = None
    source_event_id: EventId | None = None
    is_favorite: bool | None = None
    selected_for_edit: bool | None = None
    metadata: Json = None

    @property
    def timestamp(self) -> int:
        return self.timestamp_ms

    @property
    def entity_id(self) -> str:
        return self.still_candidate_id


class StillUpdated(Event, frozen=True, kw_only=True, tag="still.updated"):
    lane = "still"
    still_candidate_id: EntityId
    image_path: str | None = None
    score: float | None = None
    pose_label: str | None = None
    is_favorite: bool | None = None
    selected_for_edit: bool | None = None
    metadata: Json = None

    @property
    def entity_id(self) -> str:
        return self.still_candidate_id


class MusicMoment(Event, frozen=True, kw_only=True, tag="music.moment"):
    lane = "music"
    timestamp_ms: EpochMs
    section: OpenEnum | None = None
    tempo: float | None = None
    confidence: float | None = None
    phase: float | None = None
    energy: float | None = None
    motion_signature: str | None = None
    audio_snapshot: Json = None
    metadata: Json = None

    @property
    def timestamp(self) -> int:
        return self.timestamp_ms


class AssetCreated(Event, frozen=True, kw_only=True, tag="asset.created"):
    lane = "asset"
    asset_id: EntityId
    asset_type: OpenEnum
    path: str
    source: str | None = None
    status: OpenEnum | None = None
    metadata: Json = None

    @property
    def entity_id(self) -> str:
        return self.asset_id


AnyEvent = (
    SessionStarted
    | SessionUpdated
    | SessionCompleted
    | CameraUpserted
    | CameraStateChanged
    | DirectorEvent
    | StillCreated
    | StillUpdated
    | MusicMoment
    | AssetCreated
)
EVENT_TYPES: Final[tuple[type[Event], ...]] = (
    SessionStarted,
    SessionUpdated,
    SessionCompleted,
    CameraUpserted,
    CameraStateChanged,
    DirectorEvent,
    StillCreated,
    StillUpdated,
    MusicMoment,
    AssetCreated,
)
TAG_OF: Final[dict[type[Event], str]] = {cls: str(cls.__struct_config__.tag) for cls in EVENT_TYPES}
EVENT_TYPE_BY_TAG: Final[dict[str, type[Event]]] = {tag: cls for cls, tag in TAG_OF.items()}

# Built once: decoding and encoding are the hot path of ingestion.
DECODER: Final = msgspec.json.Decoder(AnyEvent)
ENCODER: Final = msgspec.json.Encoder()


def subject_for(root: str, event: Event) -> str:
    """`<root>.<lane>.<sessionId>`: the one subject an event may travel on."""
    return f"{root}.{event.lane}.{event.session_id}"


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of every event, for producers written in other languages."""
    (union,), components = msgspec.json.schema_components([AnyEvent], ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "motionledger event",
        **union,
        "$defs": components,
    }


def json_schemas_by_type() -> dict[str, dict[str, Any]]:
    """One JSON Schema per event type, by its `type` tag: each is its entry of `json_schema()`,
    standing alone (docs/schema/<type>.json, for producers validating one kind of event)."""
    union = json_schema()
    return {
        tag: {"$schema": union["$schema"], **union["$defs"][cls.__name__], "title": tag}
        for cls, tag in TAG_OF.items()
    }
