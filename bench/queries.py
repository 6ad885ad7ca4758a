"""Query latency over HTTP, and the rebuild of the read tables.

Requests go over one keep-alive connection with the standard library's http.client (run
in a thread): the client's own cost per request stays small and is included — the
figures are what a caller on the same machine sees, body read and all.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode

from .infra import Daemon
from .stats import percentiles


class Client:
    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, params: dict[str, Any]) -> tuple[float, Any]:
        """(seconds, result) of one GET; raises on anything but 200 with ok true."""
        url = f"{path}?{urlencode(params)}"
        started = time.perf_counter()
        self._conn.request("GET", url)
        response = self._conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:300]!r}")
        decoded = json.loads(body)
        if not decoded.get("ok"):
            raise RuntimeError(f"GET {url}: {body[:300]!r}")
        return elapsed, decoded["result"]

    def close(self) -> None:
        self._conn.close()


def _measure(client: Client, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
    for _ in range(max(3, n // 20)):  # warm the connection, plans and caches
        client.get(path, params)
    samples = [client.get(path, params)[0] * 1000 for _ in range(n)]
    return percentiles(samples)


def _query_latencies(port: int, session: str, n: int, page: int) -> dict[str, Any]:
    client = Client(port)
    try:
        cursor: str | None = None
        events = {"sessionId": session, "numItems": 100}
        for pages in range(1, page):
            _, result = client.get("/production/events", {**events, **_cursor(cursor)})
            cursor = result["continueCursor"]
            if result["isDone"]:
                raise RuntimeError(f"session {session} has only {pages} pages of 100 events")
        return {
            "timeline": _measure(client, "/production/session/timeline", {"sessionId": session}, n),
            "stills": _measure(client, "/production/stills", {"sessionId": session}, n),
            "events_page_1": _measure(client, "/production/events", events, n),
            f"events_page_{page}": _measure(
                client, "/production/events", {**events, **_cursor(cursor)}, n
            ),
        }
    finally:
        client.close()


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


async def query_latencies(daemon: Daemon, session: str, *, n: int, page: int) -> dict[str, Any]:
    return await asyncio.to_thread(_query_latencies, daemon.port, session, n, page)


async def rebuild(database_url: str, events: int) -> dict[str, Any]:
    """Every read table rebuilt from the log (a `serve` on it may keep running), in this
    process: the clock runs from the call to the moment the rebuilt tables are live."""
    from motionledger.services.rebuild import CHUNK
    from motionledger.services.rebuild import rebuild as rebuild_tables

    started = time.perf_counter()
    result = await rebuild_tables(database_url, [], chunk=CHUNK)
    seconds = time.perf_counter() - started
    return {
        "events": events,
        "seconds": seconds,
        "position": result.position,
        "build_rate": result.built_positions / result.build_seconds
        if result.build_seconds
        else None,
    }
