"""GET /production/session/live: a session's events as Server-Sent Events (services.live).

Each event is sent as `id: <log position>`, `event: <type>`, `data: <the event's JSON as
logged>`, rendered once per event whatever the number of followers; a burst of events is
one write per client. A comment keeps an idle connection open (every 10 s). The stream
ends when the hub closes the follower (too far behind, or the ledger stopping) with a
comment saying so; the client resumes with `Last-Event-ID`, as a browser's EventSource
does by itself. The response is driven by hand (an ASGI app): a client that stopped reading
holds only its own task, never the hub, and is let go of shortly after it is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Final

from litestar import get
from litestar.params import HeaderParameter, Parameter
from litestar.types import ASGIApp, Receive, Scope, Send

from .. import logs
from ..adapters.postgres.live import LoggedEvent
from ..errors import LedgerError
from ..services.live import Follower
from .deps import Live
from .params import MAX_POSITION, SessionId

log = logs.get(__name__)

CLOSE_GRACE_S: Final = 2.0  # a closed follower's last write may take this long, then it goes
_MEDIA: Final[str] = "text/event-stream"
_HEADERS: Final = [
    (b"content-type", _MEDIA.encode()),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # a proxy must pass each event on at once
]
_KEEP_ALIVE: Final = b": keep-alive\n\n"
_CLOSING: Final = {
    "lagging": b": closed: more than 10000 events behind; resume with Last-Event-ID\n\n",
    "stopping": b": closed: the ledger is stopping; resume with Last-Event-ID\n\n",
    "error": b": closed: the log could not be read; resume with Last-Event-ID\n\n",
}


def sse_frame(event: LoggedEvent) -> bytes:
    """One event as the stream sends it (jsonb's JSON text holds no raw line breaks)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), event.body)


def _body(chunk: bytes, more: bool = True) -> Any:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


@dataclass
class EventStream:
    """The response: the follower's bursts until it is closed or the client goes."""

    follower: Follower
    after: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        follower = self.follower
        tasks: set[asyncio.Future[None]] = set()
        try:
            start: Any = {"type": "http.response.start", "status": 200, "headers": _HEADERS}
            await send(start)
            pump = asyncio.ensure_future(self._pump(send))
            gone = asyncio.ensure_future(_disconnected(receive))
            closed = asyncio.ensure_future(follower.until_closed())
            tasks = {pump, gone, closed}
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if done == {closed}:  # its last write may be stuck behind a client not reading
                last = {pump, gone}
                await asyncio.wait(last, timeout=CLOSE_GRACE_S, return_when="FIRST_COMPLETED")
        finally:
            for task in tasks:
                task.cancel()
            follower.leave()
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.error(
                "live_stream_error", session_id=follower.session_id, error=repr(pump.exception())
            )

    async def _pump(self, send: Send) -> None:
        follower = self.follower
        await send(_body(b"retry: 1000\n: following %s after %d\n\n" % (
            follower.session_id.encode(), self.after)))  # fmt: skip
        reason = "error"
        try:
            async for chunk in follower.chunks():
                await send(_body(_KEEP_ALIVE if chunk is None else chunk))
            reason = follower.closed or "stopping"
        except LedgerError as error:
            log.warning("live_stream_failed", session_id=follower.session_id, error=str(error))
        await send(_body(_CLOSING[reason], more=False))


# One event of the stream, as OpenAPI before 3.2 describes an event stream's items.
Position = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=MAX_POSITION,
        schema_extra={"minimum": 0},
        description="send the session's events after this log position (default: all)",
    ),
]
LastEventId = Annotated[
    int | None,
    HeaderParameter(
        name="Last-Event-ID",
        ge=0,
        le=MAX_POSITION,
        schema_extra={"minimum": 0},
        description="the id of the last event received: resume after it (wins over `after`)",
    ),
]


@get(
    "/session/live",
    # Not in the OpenAPI document: an event stream is no request-and-answer a client
    # generated from it could call (a generic caller of a known session would wait on it
    # forever). The document's description says how to follow a session.
    include_in_schema=False,
    summary="Follow a session: its events as Server-Sent Events, then the new ones live",
    description="Every event of the session after `Last-Event-ID` (or `after`; default: from "
    "the start), each once, in log order; then new ones as they are committed. A comment at "
    "least every 15 s. A client more than 10000 events behind is disconnected and resumes "
    "with Last-Event-ID.",
)
async def get_live(
    live: Live,
    sessionId: SessionId,
    after: Position = None,
    last_event_id: LastEventId = None,
) -> ASGIApp:
    start = last_event_id if last_event_id is not None else (after or 0)
    return EventStream(await live.follow(sessionId, start), start)


LIVE_ROUTES: Final[list[Any]] = [get_live]
