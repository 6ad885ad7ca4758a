"""A plain Server-Sent Events reader for the tests, written from the format's rules (not the
SDK's client): events as (id, event, data), comments kept, nothing resumed by itself."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec


@dataclass
class Received:
    id: int
    type: str
    data: bytes

    @property
    def body(self) -> Any:
        return msgspec.json.decode(self.data)


@dataclass
class Stream:
    """What one connection got: its events, its comments, and whether the server ended it."""

    status: int = 0
    content_type: str = ""
    events: list[Received] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended_by_server: bool = False
    error: Any = None

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.events]

    @property
    def last_id(self) -> int | None:
        return self.events[-1].id if self.events else None

    @property
    def last_body(self) -> Any:
        return self.events[-1].body if self.events else None


def _parse(lines: list[str]) -> Received | None:
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    if "data" not in fields:
        return None
    return Received(
        int(fields["id"][-1]),
        fields.get("event", ["message"])[-1],
        "\n".join(fields["data"]).encode(),
    )


async def follow(
    base_url: str,
    session_id: str,
    *,
    done: Callable[[Stream], bool],
    last_event_id: int | None = None,
    after: int | None = None,
    headers: dict[str, str] | None = None,
    on_event: Callable[[Received], None] | None = None,
) -> Stream:
    """Follow until `done(stream)` says so (then hang up) or the server ends the stream."""
    stream = Stream()
    sent = dict(headers or {})
    if last_event_id is not None:
        sent["Last-Event-ID"] = str(last_event_id)
    params: dict[str, Any] = {"sessionId": session_id}
    if after is not None:
        params["after"] = after
    timeout = httpx.Timeout(10.0, read=60.0)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as http,
        http.stream("GET", "/production/session/live", params=params, headers=sent) as response,
    ):
        stream.status = response.status_code
        stream.content_type = response.headers.get("content-type", "")
        if response.status_code != 200:
            stream.error = msgspec.json.decode(await response.aread())
            return stream
        pending: list[str] = []
        async for line in _lines(response):
            if line == "":
                received = _parse(pending)
                pending = []
                if received is not None:
                    stream.events.append(received)
                    if on_event is not None:
                        on_event(received)
                    if done(stream):
                        return stream
            elif line.startswith(":"):
                stream.comments.append(line[1:].strip())
                if done(stream):
                    return stream
            else:
                pending.append(line)
        stream.ended_by_server = True
    return stream


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    with contextlib.suppress(httpx.RemoteProtocolError):
        async for line in response.aiter_lines():
            yield line
