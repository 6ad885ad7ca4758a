"""A ledger running in-process for a whole hypothesis test: each example publishes a batch
and waits for its verdicts, so hundreds of generated messages cost seconds, not minutes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from motionledger.daemon import Runtime
from motionledger.settings import Settings
from tests.support.ledger import running_ledger


@dataclass
class Ledger:
    settings: Settings
    db: asyncpg.Connection
    js: JetStreamContext
    resources: Runtime

    @property
    def root(self) -> str:
        return self.settings.subject_root

    async def committed(self) -> int:
        return int(await self.db.fetchval("SELECT stream_seq FROM ledger.ingest_state") or 0)

    async def wait_for(self, seq: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while await self.committed() < seq:
            ingestor = self.resources.ingestor
            assert ingestor is not None
            assert ingestor.active, "the ingest daemon lost its lease or stopped"
            assert time.monotonic() < deadline, f"ingest stuck at {await self.committed()} < {seq}"
            await asyncio.sleep(0.01)


@pytest.fixture
async def ledger(settings: Settings, db: asyncpg.Connection, nc: Client) -> AsyncIterator[Ledger]:
    async with running_ledger(settings) as resources:
        yield Ledger(settings, db, nc.jetstream(), resources)
