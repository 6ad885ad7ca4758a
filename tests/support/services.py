"""Where the tests' PostgreSQL and NATS come from, in the order the project promises:

1. URLs from the environment (MOTIONLEDGER_TEST_DATABASE_URL, MOTIONLEDGER_TEST_NATS_URL);
2. the machine's own services (127.0.0.1:5432 with trust auth, 127.0.0.1:4222);
3. testcontainers, when a Docker engine answers;
4. embedded servers started for this test session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import nats

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.embedded.postgres import PostgresProcess

LOCAL_POSTGRES = "postgresql://root@127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _postgres_answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except Exception:
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def _nats_has_jetstream(url: str) -> bool:
    async def probe() -> bool:
        try:
            client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        except Exception:
            return False
        try:
            await client.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await client.close()

    return asyncio.run(probe())


def _docker_container(kind: str) -> tuple[str, Callable[[], None]] | None:
    """A testcontainers server, or None when no Docker engine answers (quickly)."""
    try:
        from testcontainers.core.docker_client import DockerClient

        DockerClient().client.ping()
    except Exception:
        return None
    if kind == "postgres":
        from testcontainers.postgres import PostgresContainer

        pg = PostgresContainer("postgres:16", driver=None).start()
        return pg.get_connection_url(), pg.stop
    from testcontainers.nats import NatsContainer

    nc = NatsContainer(image="nats:2.10", jetstream=True).start()
    return nc.nats_uri(), nc.stop


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """An admin DSN (a database we may CREATE DATABASE from)."""
    from_env = os.environ.get("MOTIONLEDGER_TEST_DATABASE_URL")
    if from_env:
        yield from_env
        return
    if _listening("127.0.0.1", 5432) and _postgres_answers(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return
    container = _docker_container("postgres")
    if container is not None:
        url, stop = container
        try:
            yield url
        finally:
            stop()
        return
    with tempfile.TemporaryDirectory(prefix="mlt-pg-") as tmp:
        server = PostgresProcess(Path(tmp), database="postgres")
        server.start()
        try:
            yield server.dsn("postgres")
        finally:
            server.stop()


@contextlib.contextmanager
def nats_url() -> Iterator[str]:
    from_env = os.environ.get("MOTIONLEDGER_TEST_NATS_URL")
    if from_env:
        yield from_env
        return
    if _listening("127.0.0.1", 4222) and _nats_has_jetstream(LOCAL_NATS):
        yield LOCAL_NATS
        return
    container = _docker_container("nats")
    if container is not None:
        url, stop = container
        try:
            yield url
        finally:
            stop()
        return
    with tempfile.TemporaryDirectory(prefix="mlt-nats-") as tmp:
        server = NatsProcess(Path(tmp))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
