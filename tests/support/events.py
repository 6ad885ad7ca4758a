"""Building and publishing events the way an outside producer would: plain JSON."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import msgspec
from nats.js import JetStreamContext

_counter = itertools.count()


def new_id() -> str:
    return str(uuid.uuid4())


def session_started(session: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "session.started",
        "eventId": new_id(),
        "sessionId": session,
        "sessionType": "photoshoot_performance",
        **extra,
    }


def camera_upserted(session: str, camera: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "camera.upserted",
        "eventId": new_id(),
        "sessionId": session,
        "cameraId": camera,
        "sourceType": "iphone",
        "role": "hero",
        "priorityWeight": 1.0,
        "isActive": True,
        **extra,
    }


def camera_state(session: str, camera: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "camera.state_changed",
        "eventId": new_id(),
        "sessionId": session,
        "cameraId": camera,
        **extra,
    }


def director(
    session: str, ts: int | None = None, event_type: str = "cut", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "director.event",
        "eventId": new_id(),
        "sessionId": session,
        "timestampMs": next(_counter) if ts is None else ts,
        "eventType": event_type,
        **extra,
    }


def still_created(session: str, still: str, camera: str = "cam1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "still.created",
        "eventId": new_id(),
        "sessionId": session,
        "stillCandidateId": still,
        "cameraId": camera,
        "timestampMs": 1000,
        "score": 0.5,
        **extra,
    }


def still_updated(session: str, still: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "still.updated",
        "eventId": new_id(),
        "sessionId": session,
        "stillCandidateId": still,
        **extra,
    }


def music(session: str, ts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "type": "music.moment",
        "eventId": new_id(),
        "sessionId": session,
        "timestampMs": ts,
        **extra,
    }


def asset(session: str, asset_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "asset.created",
        "eventId": new_id(),
        "sessionId": session,
        "assetId": asset_id,
        "assetType": "clip",
        "path": f"/assets/{asset_id}.mp4",
        **extra,
    }


def session_updated(session: str, **extra: Any) -> dict[str, Any]:
    return {"type": "session.updated", "eventId": new_id(), "sessionId": session, **extra}


def session_completed(session: str, **extra: Any) -> dict[str, Any]:
    return {"type": "session.completed", "eventId": new_id(), "sessionId": session, **extra}


LANE_OF = {
    "session.started": "session",
    "session.updated": "session",
    "session.completed": "session",
    "camera.upserted": "camera",
    "camera.state_changed": "camera",
    "director.event": "director",
    "still.created": "still",
    "still.updated": "still",
    "music.moment": "music",
    "asset.created": "asset",
}


def subject_of(root: str, event: dict[str, Any]) -> str:
    return f"{root}.{LANE_OF[event['type']]}.{event['sessionId']}"


async def publish_events(
    js: JetStreamContext, root: str, events: list[dict[str, Any]], *, in_flight: int = 256
) -> list[int]:
    """Publish in order (each acked by the stream); returns the stream sequences."""
    seqs: list[int] = []
    for start in range(0, len(events), in_flight):
        chunk = events[start : start + in_flight]
        acks = await asyncio.gather(
            *(
                js.publish(
                    subject_of(root, e),
                    msgspec.json.encode(e),
                    headers={"Nats-Msg-Id": e["eventId"]},
                )
                for e in chunk
            )
        )
        seqs.extend(a.seq for a in acks)
    return seqs


async def publish_raw(
    js: JetStreamContext, subject: str, body: bytes, msg_id: str | None = None
) -> int:
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    return (await js.publish(subject, body, headers=headers)).seq
