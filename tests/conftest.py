"""Shared fixtures: real PostgreSQL and NATS (see support/services.py for where from), a
fresh database and fresh stream names per test, so tests never see each other's data."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import hypothesis
import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from motionledger import logs
from motionledger.adapters.embedded.processes import free_port
from motionledger.adapters.postgres.database import connect
from motionledger.settings import Settings
from tests.support import databases, services

logs.configure("console")

# Property tests run the same examples on every run by default, so CI cannot fail on a
# draw no one has seen; `HYPOTHESIS_PROFILE=explore` searches afresh (and longer).
hypothesis.settings.register_profile("repeatable", derandomize=True, print_blob=True)
hypothesis.settings.register_profile("explore", max_examples=500, print_blob=True)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with services.postgres_url() as url:
        yield url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with services.nats_url() as url:
        yield url


@pytest.fixture
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    url = await databases.create_database(pg_admin_url)
    yield url
    await databases.drop_database(pg_admin_url, url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def names() -> tuple[str, str]:
    """A stream name and subject root no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return f"T{tag}", f"t{tag}"


@pytest.fixture
async def settings(
    database_url: str, nats_url: str, names: tuple[str, str]
) -> AsyncIterator[Settings]:
    stream, root = names
    yield Settings(
        nats_url=nats_url,
        database_url=database_url,
        stream=stream,
        subject_root=root,
        http_port=free_port(),
        log_format="json",
        duplicate_window="30s",
        stream_max_age="1h",
    )
    client = await nats.connect(nats_url)
    with contextlib.suppress(NotFoundError):
        await client.jetstream().delete_stream(stream)
    await client.close()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
