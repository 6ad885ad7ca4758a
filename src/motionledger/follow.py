"""Follow a session of the ledger as it happens: an async iterator over its live stream
(`GET /production/session/live`, Server-Sent Events) that resumes by itself.

    from motionledger.follow import follow

    async for item in follow("http://127.0.0.1:8080", "shoot-42", token=token):
        print(item.position, item.event)  # the log position, and the typed event Struct

Every event of the session after `after` (default: from the start), each once, in log
order, then the new ones as they are committed. A dropped connection, a server that closed
the stream (a client too far behind, a ledger restarting) or one that went silent past
`idle_timeout` is followed again from the last position received (`Last-Event-ID`), after
a short back-off: nothing is missed and nothing repeats. A session the ledger does not know
(404), a wrong token (401) or a malformed request (400) raise `FollowRefused`.

It needs nothing but the standard library's asyncio streams and the event Structs, so a
plain `pip install motionledger` has it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable
from typing import Final, NamedTuple
from urllib.parse import quote, urlsplit

import msgspec

from .domain.events import DECODER, AnyEvent

__all__ = ["FollowRefused", "Followed", "follow"]

log = logging.getLogger(__name__)  # the host application decides where an SDK's records go

_MAX_HEADER: Final = 64 * 1024


class Followed(NamedTuple):
    position: int  # the event's log position (its `id:`; resume after it)
    event: AnyEvent
    data: bytes  # the event's JSON as logged


class FollowRefused(Exception):
    """The ledger answered the request with an error that retrying does not change."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class _Retry(Exception):
    """Try again after a back-off (the server is away, busy or closed the stream)."""


async def follow(
    url: str,
    session_id: str,
    *,
    after: int | None = None,
    token: str | None = None,
    retry_s: float = 1.0,
    max_retry_s: float = 30.0,
    idle_timeout: float = 45.0,
    connect_timeout: float = 10.0,
) -> AsyncIterator[Followed]:
    """The session's events from the ledger at `url` (e.g. `http://127.0.0.1:8080`),
    after log position `after`; resumes by itself until the caller stops iterating."""
    position = after
    delay = retry_s
    while True:
        try:
            async for item in _stream(
                url, session_id, position, token, idle_timeout, connect_timeout
            ):
                position = item.position
                delay = retry_s
                yield item
            log.info("follow_stream_ended", extra={"position": position})
            delay = retry_s  # closed by the server on purpose: come back soon
        except (OSError, TimeoutError, asyncio.IncompleteReadError, _Retry) as error:
            log.warning("follow_reconnecting", extra={"position": position, "error": repr(error)})
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_retry_s)


def _request(url: str, session_id: str, after: int | None, token: str | None) -> bytes:
    split = urlsplit(url)
    path = split.path.rstrip("/") + "/production/session/live"  # behind a prefix, kept
    query = f"sessionId={quote(session_id, safe='')}"
    lines = [
        f"GET {path}?{query} HTTP/1.1",
        f"Host: {split.netloc}",
        "Accept: text/event-stream",
        "Cache-Control: no-cache",
        "Connection: close",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if after is not None:
        lines.append(f"Last-Event-ID: {after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _stream(
    url: str,
    session_id: str,
    after: int | None,
    token: str | None,
    idle_timeout: float,
    connect_timeout: float,
) -> AsyncIterator[Followed]:
    """One connection: its events, until the server ends the stream."""
    split = urlsplit(url)
    secure = split.scheme == "https"
    host = split.hostname or "127.0.0.1"
    port = split.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, limit=_MAX_HEADER), connect_timeout
    )
    try:
        writer.write(_request(url, session_id, after, token))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), connect_timeout)
        status, headers = _head(head)
        body = _body(reader, headers, idle_timeout)
        if status != 200:
            _refused(status, b"".join([chunk async for chunk in body]))
        async for item in _events(body):
            yield item
    finally:
        writer.close()


def _head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body(
    reader: asyncio.StreamReader, headers: dict[str, str], idle_timeout: float
) -> AsyncIterator[bytes]:
    """The response body as it comes (chunked, sized or until the connection closes); a
    silence past `idle_timeout` is a dead connection (the server comments every ~10 s)."""

    async def read(what: Awaitable[bytes]) -> bytes:
        return await asyncio.wait_for(what, idle_timeout)

    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await read(reader.readuntil(b"\r\n"))).split(b";")[0], 16)
            if size == 0:
                return
            chunk = await read(reader.readexactly(size + 2))
            yield chunk[:-2]
    elif "content-length" in headers:
        yield await read(reader.readexactly(int(headers["content-length"])))
    else:
        while chunk := await read(reader.read(65536)):
            yield chunk


def _refused(status: int, body: bytes) -> None:
    try:
        error = msgspec.json.decode(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (msgspec.DecodeError, KeyError, TypeError):
        code, message = "error", body[:200].decode(errors="replace")
    if status in (400, 401, 403, 404):
        raise FollowRefused(status, code, message)
    raise _Retry(f"{status} {code}: {message}")


async def _events(body: AsyncIterator[bytes]) -> AsyncIterator[Followed]:
    """Server-Sent Events: `id`, `event` and `data` fields, an empty line ends each."""
    buffer = b""
    position: int | None = None
    data: list[bytes] = []
    async for chunk in body:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r")
            if not line:
                if data and position is not None:
                    payload = b"\n".join(data)
                    yield Followed(position, DECODER.decode(payload), payload)
                data = []
                continue
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"id":
                position = int(value)
            elif name == b"data":
                data.append(value)
