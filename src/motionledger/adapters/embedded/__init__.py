"""Embedded NATS and PostgreSQL for a bare machine (`serve` with neither URL set)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ...settings import Settings


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Settings]:
    raise RuntimeError("the embedded broker and database are not available in this build")
    yield settings  # pragma: no cover


@contextlib.asynccontextmanager
async def database_for_command(settings: Settings) -> AsyncIterator[str]:
    if settings.database_url is None:
        raise RuntimeError("set MOTIONLEDGER_DATABASE_URL")
    yield settings.database_url
