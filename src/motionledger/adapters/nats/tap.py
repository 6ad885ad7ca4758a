"""A tap on nats-py's message dispatch: chosen subscriptions skip the client's `Msg` path.

nats-py's parser hands every message to `Client._process_msg`, which builds a `Msg`, parses
headers and queues it for the subscription's task. For a subscription registered here the
raw (subject, reply, data, headers) go straight to a plain callback instead — the ingest's
hot path. It hooks a private method, so it checks its signature once per client and refuses
an unknown one (see the nats-py range pinned in pyproject.toml). Imports nothing but
nats-py and the standard library: the producer SDK's opt-in fast path uses it too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from nats.aio.client import Client

Handler = Callable[[bytes, bytes, bytes, bytes], None]

_EXPECTED = ["sid", "subject", "reply", "data", "headers"]


class UnsupportedClient(RuntimeError):
    """This nats-py's private dispatch is not the one the tap was written for."""


def tap_supported(client: Client) -> bool:
    """Whether `client._process_msg` has the signature the tap relies on."""
    original = getattr(client, "_process_msg", None)
    if original is None:
        return False
    return list(inspect.signature(original).parameters) == _EXPECTED


def tap_messages(client: Client) -> dict[int, Handler]:
    """Route messages of chosen subscription ids to plain callbacks, before nats-py's Msg path.

    Returns the client's registry: `registry[sub._id] = callback` to route, `pop` to stop.
    A callback runs inside the client's read loop: it must not raise and must not block.
    """
    taps: dict[int, Handler] | None = getattr(client, "_motionledger_taps", None)
    if taps is not None:
        return taps
    if not tap_supported(client):
        found = getattr(client, "_process_msg", None)
        shape = tuple(inspect.signature(found).parameters) if found is not None else "missing"
        raise UnsupportedClient(
            f"unsupported nats-py: _process_msg{shape}; install a nats-py in the range "
            "motionledger pins"
        )
    original = client._process_msg
    registry: dict[int, Handler] = {}

    async def process(sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        handler = registry.get(sid)
        if handler is None:
            await original(sid, subject, reply, data, headers)
        else:
            handler(subject, reply, data, headers or b"")

    client._process_msg = process  # type: ignore[method-assign]
    client._motionledger_taps = registry  # type: ignore[attr-defined]
    return registry
