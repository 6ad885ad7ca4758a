"""`motionledger follow SESSION`: a session's events as they happen, one line each.

Through the query endpoint's live stream (motionledger.follow, standard library only, so it
runs on a producer-only install): the address from the settings (`make run`'s embedded
default included), the token from MOTIONLEDGER_API_TOKEN. A readable line per event, or
with --json one JSON object per line (`{"position": N, "event": <as logged>}`). It runs
until stopped, waiting for the ledger when it is away; an unknown session or a refused
token exits 2.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from ..follow import Followed, FollowRefused, follow
from ..settings import Settings

_QUIET_FIELDS: Final = frozenset({"type", "eventId", "sessionId", "timestampMs"})
_ANY_HOST: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - a listen address, not ours


def endpoint(settings: Settings) -> str:
    """Where this machine's `serve` answers, as its settings say."""
    host = "127.0.0.1" if settings.http_host in _ANY_HOST else settings.http_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else msgspec.json.encode(value).decode()
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def line(item: Followed) -> str:
    """`#position  time  type  field=value ...`: the event's own fields, as declared (its
    timestampMs as a UTC time of day, ids and nulls left out)."""
    event = item.event
    timestamp = getattr(event, "timestamp_ms", None)
    when = (  # the shoot clock, UTC
        datetime.fromtimestamp(timestamp / 1000, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"
        if isinstance(timestamp, int)
        else "-" * 13
    )
    kind = str(type(event).__struct_config__.tag)
    fields = [
        f"{f.encode_name}={_value(getattr(event, f.name))}"
        for f in msgspec.structs.fields(event)
        if f.encode_name not in _QUIET_FIELDS and getattr(event, f.name) is not None
    ]
    return f"#{item.position:<8} {when}  {kind:<22} {' '.join(fields)}".rstrip()


async def run_follow(
    settings: Settings, session_id: str, *, after: int | None, as_json: bool, url: str | None
) -> int:
    base = url or endpoint(settings)
    start = "from the start" if after is None else f"after #{after}"
    print(f"following {session_id} at {base} {start} (Ctrl-C to stop)", file=sys.stderr)
    out = sys.stdout.buffer
    try:
        async for item in follow(base, session_id, after=after, token=settings.api_token):
            if as_json:
                out.write(b'{"position":%d,"event":%s}\n' % (item.position, item.data))
            else:
                out.write(line(item).encode() + b"\n")
            out.flush()
    except FollowRefused as refused:  # it cannot run: an unknown session, a wrong token
        print(f"motionledger follow: {refused}", file=sys.stderr)
        return 2
    return 0
