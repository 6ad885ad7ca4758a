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
# Text PostgreSQL can store: JSON allows U+0000 in a string, text and jsonb do not (such an
# event is refused as `unstorable`). Documented in the schema, so it says what is accepted;
# the check itself is one scan of the canonical body (domain.decoding), not a regex a field.
STORABLE_TEXT: Final = "^[^\\u0000]*$"
Text = Annotated[str, Meta(extra_json_schema={"pattern": STORABLE_TEXT})]
OpenEnum = Annotated[
    str,
    Meta(
        min_length=1,
        description="open enumeration: any non-empty string",
        extra_json_schema={"pattern": STORABLE_TEXT},
    ),
]
# Any JSON value. Kept as plain Python values so they round-trip through jsonb. Its schema
# is recursive (strings without U+0000, at every depth): the marker is replaced by a
# reference to `json_value_schema` wherever a schema is published.
JSON_VALUE_MARK: Final = "x-motionledger-json-value"
Json = Annotated[Any, Meta(extra_json_schema={JSON_VALUE_MARK: True})]
MAX_JSON_DEPTH_DOC: Final = 256  # see domain.nesting: enforced on the raw bytes

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
    title: Text | None = None
    notes: Text | None = None
    director_mode: DirectorMode | None = None
    music_mode: MusicMode | None = None
    project_slug: Text | None = None
    started_at: EpochMs | None = None
    metadata: Json = None


class SessionUpdated(Event, frozen=True, kw_only=True, tag="session.updated"):
    lane = "session"
    session_type: SessionType | None = None
    status: SessionStatus | None = None
    title: Text | None = None
    notes: Text | None = None
    director_mode: DirectorMode | None = None
    music_mode: MusicMode | None = None
    project_slug: Text | None = None
    metadata: Json = None


class SessionCompleted(Event, frozen=True, kw_only=True, tag="session.completed"):
    lane = "session"
    status: EndStatus | None = None
    notes: Text | None = None


class CameraUpserted(Event, frozen=True, kw_only=True, tag="camera.upserted"):
    lane = "camera"
    camera_id: EntityId
    device_name: Text | None = None
    source_type: OpenEnum
    role: OpenEnum
    priority_weight: float
    is_active: bool
    is_wide_fallback: bool | None = None
    position_hint: Text | None = None
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
    reason: Text | None = None
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
    image_path: Text | None = None
    score: float
    pose_label: Text | None = None
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
    image_path: Text | None = None
    score: float | None = None
    pose_label: Text | None = None
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
    motion_signature: Text | None = None
    audio_snapshot: Json = None
    metadata: Json = None

    @property
    def timestamp(self) -> int:
        return self.timestamp_ms


class AssetCreated(Event, frozen=True, kw_only=True, tag="asset.created"):
    lane = "asset"
    asset_id: EntityId
    asset_type: OpenEnum
    path: Text
    source: Text | None = None
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


def json_value_schema(ref: str) -> dict[str, Any]:
    """The schema of a free JSON value (metadata, audioSnapshot), `ref` naming itself."""
    return {
        "description": f"any JSON value nested at most {MAX_JSON_DEPTH_DOC} levels deep; no "
        "string (or key) may hold U+0000, which PostgreSQL cannot store",
        "anyOf": [
            {"type": "string", "pattern": STORABLE_TEXT},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": ref}},
            {
                "type": "object",
                "additionalProperties": {"$ref": ref},
                "propertyNames": {"pattern": STORABLE_TEXT},
            },
        ],
    }


def with_json_values(schema: Any, ref: str) -> Any:
    """`schema` with every free JSON value's schema a reference to `ref`."""
    if isinstance(schema, dict):
        if schema.get(JSON_VALUE_MARK):
            rest = {k: v for k, v in schema.items() if k != JSON_VALUE_MARK}
            return {"$ref": ref, **rest}
        return {key: with_json_values(value, ref) for key, value in schema.items()}
    if isinstance(schema, list):
        return [with_json_values(item, ref) for item in schema]
    return schema


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of every event, for producers written in other languages."""
    (union,), components = msgspec.json.schema_components([AnyEvent], ref_template="#/$defs/{name}")
    ref = "#/$defs/JsonValue"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "motionledger event",
        **union,
        "$defs": {**with_json_values(components, ref), "JsonValue": json_value_schema(ref)},
    }


def json_schemas_by_type() -> dict[str, dict[str, Any]]:
    """One JSON Schema per event type, by its `type` tag: each is its entry of `json_schema()`,
    standing alone (docs/schema/<type>.json, for producers validating one kind of event)."""
    union = json_schema()
    json_value = {"JsonValue": union["$defs"]["JsonValue"]}
    return {
        tag: {
            "$schema": union["$schema"],
            **union["$defs"][cls.__name__],
            "title": tag,
            "$defs": json_value,
        }
        for cls, tag in TAG_OF.items()
    }
