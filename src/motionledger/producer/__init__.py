"""The producer SDK: publish typed events to the ledger, many in flight, none lost or doubled.
See `client.py` for what it does for a producer."""

from .client import Producer, connect
from .wire import Ack, EventLike, InvalidEvent, Prepared, ProducerStats, PublishError, make_event

__all__ = [
    "Ack",
    "EventLike",
    "InvalidEvent",
    "Prepared",
    "Producer",
    "ProducerStats",
    "PublishError",
    "connect",
    "make_event",
]
