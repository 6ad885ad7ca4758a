"""/production/events: keyset pages through thousands of events while more arrive."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import Client

from motionledger.settings import Settings
from tests.http.conftest import Api
from tests.http.test_reads import publish, visible
from tests.support import events as ev


async def walk(api: Api, cursor: str | None, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every page from `cursor` until isDone; returns the rows and the last continueCursor."""
    rows: list[dict[str, Any]] = []
    while True:
        page = (await api.get("events", sessionId="S", cursor=cursor, **params)).result
        assert isinstance(page["continueCursor"], str)
        rows += page["page"]
        cursor = page["continueCursor"]
        if page["isDone"]:
            return rows, cursor


async def test_paging_while_events_arrive_misses_and_repeats_nothing(
    api: Api, nc: Client, settings: Settings
) -> None:
    first = [ev.session_started("S")]
    # thousands, with runs of equal timestamps: log position breaks the ties
    first += [ev.director("S", i // 3, "cut" if i % 4 else "hold") for i in range(3000)]
    await publish(nc, settings, first)
    await visible(api, first[-1]["eventId"])
    arriving = [ev.director("S", 1000 + i // 2, "cut") for i in range(1000)]

    async def producer() -> None:
        for start in range(0, len(arriving), 50):
            await publish(nc, settings, arriving[start : start + 50])
            await asyncio.sleep(0.005)

    producing = asyncio.ensure_future(producer())
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while not producing.done() or pages < 5:
        page = (await api.get("events", sessionId="S", numItems=97, cursor=cursor)).result
        seen += page["page"]
        cursor = page["continueCursor"]
        pages += 1
        if page["isDone"] and producing.done():
            break
    await producing
    await visible(api, arriving[-1]["eventId"])
    rest, last_cursor = await walk(api, cursor, numItems=97)
    seen += rest
    got = [row["eventId"] for row in seen]
    want = [e["eventId"] for e in first[1:] + arriving]
    assert len(got) == len(set(got)), "an event was repeated"
    assert got == want, "missed or out of order"
    stamps = [row["timestampMs"] for row in seen]
    assert stamps == sorted(stamps)
    again = (await api.get("events", sessionId="S", cursor=last_cursor)).result
    assert again == {"page": [], "isDone": True, "continueCursor": last_cursor}


async def test_filtered_pages_and_page_sizes(api: Api, nc: Client, settings: Settings) -> None:
    events = [ev.session_started("S")]
    events += [
        ev.director("S", i, "hold" if i % 3 == 0 else "cut", cameraId=f"c{i % 2}")
        for i in range(250)
    ]
    await publish(nc, settings, events)
    await visible(api, events[-1]["eventId"])
    holds, _ = await walk(api, None, numItems=10, eventType="hold")
    assert [r["timestampMs"] for r in holds] == list(range(0, 250, 3))
    odd, _ = await walk(api, None, numItems=1000, cameraId="c1")
    assert [r["timestampMs"] for r in odd] == list(range(1, 250, 2))
    both, _ = await walk(api, None, numItems=7, eventType="hold", cameraId="c0")
    assert [r["timestampMs"] for r in both] == list(range(0, 250, 6))
    full = (await api.get("events", sessionId="S", numItems=250)).result
    assert len(full["page"]) == 250
    assert full["isDone"] is True  # nothing after it
    short = (await api.get("events", sessionId="S", numItems=249)).result
    assert short["isDone"] is False
    tail = (await api.get("events", sessionId="S", cursor=short["continueCursor"])).result
    assert [r["timestampMs"] for r in tail["page"]] == [249]
