"""`motionledger simulate`: play a generated shoot (services/shoot.py) into a running ledger.

Events go out through the producer SDK, paced on the shoot's clock (`speed` 1 = real
time, 0 = as fast as the broker takes them), with a progress bar and a summary of what
was sent and acknowledged at the end.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain.events import DirectorEvent
from ..producer import Ack, Producer
from ..settings import Settings
from .shoot import ShootPlan, session_ids, shoot


@dataclass(slots=True)
class Summary:
    plan: ShootPlan
    sessions: list[str]
    sent: Counter[str] = field(default_factory=Counter)  # by type (director: by eventType)
    acknowledged: int = 0
    duplicates: int = 0
    failed: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.plan.seed,
            "startMs": self.plan.start_ms,
            "sessions": self.sessions,
            "sent": dict(sorted(self.sent.items())),
            "total": self.total,
            "acknowledged": self.acknowledged,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "firstError": self.first_error,
            "elapsedS": round(self.elapsed_s, 3),
        }


def _kind(event: Any) -> str:
    if isinstance(event, DirectorEvent):
        return f"director.{event.event_type}"
    return str(event.type_name)


async def play(
    producer: Producer,
    plan: ShootPlan,
    *,
    speed: float = 1.0,
    on_progress: Callable[[int, Summary], None] | None = None,
) -> Summary:
    """Publish the shoot; `speed` multiplies the shoot clock (0: no pacing at all)."""
    summary = Summary(plan, session_ids(plan))

    def acked(future: asyncio.Future[Ack]) -> None:
        error = future.exception()
        if error is not None:
            summary.failed += 1
            summary.first_error = summary.first_error or str(error)
            return
        summary.acknowledged += 1
        summary.duplicates += future.result().duplicate

    started = time.monotonic()
    last_report = 0.0
    for offset, event in shoot(plan):
        if speed > 0:
            ahead = offset / 1000 / speed - (time.monotonic() - started)
            if ahead > 0.001:
                await asyncio.sleep(ahead)
        future = await producer.submit(event)
        future.add_done_callback(acked)
        summary.sent[_kind(event)] += 1
        if on_progress is not None and time.monotonic() - last_report > 0.1:
            last_report = time.monotonic()
            on_progress(offset, summary)
    await producer.flush()
    summary.elapsed_s = time.monotonic() - started
    if on_progress is not None:
        on_progress(int(plan.duration_s * 1000) + plan.sessions * plan.session_stagger_ms, summary)
    return summary


def nats_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    if settings.nats_tls_ca:
        options["tls"] = ssl.create_default_context(cafile=settings.nats_tls_ca)
    return options
