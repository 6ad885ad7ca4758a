"""The producer SDK: publish typed events to the ledger, many in flight, none lost or doubled.

`pip install motionledger` brings this and the event types only (nats-py and msgspec);
see `client.py` for what it does for a producer, and docs/producers.md for the wire
contract other languages follow.
"""

from ..domain.events import (
    AnyEvent,
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
from .client import Producer, connect
from .wire import (
    Ack,
    EventIdReused,
    EventLike,
    InvalidEvent,
    Prepared,
    ProducerStats,
    PublishError,
    make_event,
)

__all__ = [
    "Ack",
    "AnyEvent",
    "AssetCreated",
    "CameraStateChanged",
    "CameraUpserted",
    "DirectorEvent",
    "Event",
    "EventIdReused",
    "EventLike",
    "InvalidEvent",
    "MusicMoment",
    "Prepared",
    "Producer",
    "ProducerStats",
    "PublishError",
    "SessionCompleted",
    "SessionStarted",
    "SessionUpdated",
    "StillCreated",
    "StillUpdated",
    "connect",
    "make_event",
]
