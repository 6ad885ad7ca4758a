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

import nats

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.embedded.postgres import PostgresProcess
from motionledger.adapters.postgres.database import answers

LOCAL_POSTGRES = "postgresql://root@127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


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
def _resolve(
    env: str,
    local: str,
    local_answers: Callable[[], bool],
    container: str,
    embedded: Callable[[Path], tuple[str, Callable[[], None]]],
) -> Iterator[str]:
    """The first that works: the environment, the local service, a container, embedded."""
    from_env = os.environ.get(env)
    if from_env:
        yield from_env
        return
    if local_answers():
        yield local
        return
    started = _docker_container(container)
    if started is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"mlt-{container}-")
        url, stop_server = embedded(Path(tmp.name))
        started = url, lambda: (stop_server(), tmp.cleanup())
    url, stop = started
    try:
        yield url
    finally:
        stop()


def _embedded_postgres(directory: Path) -> tuple[str, Callable[[], None]]:
    server = PostgresProcess(directory, database="postgres")
    server.start()
    return server.dsn("postgres"), server.stop


def _embedded_nats(directory: Path) -> tuple[str, Callable[[], None]]:
    server = NatsProcess(directory)
    server.start()
    return server.url, server.stop


def postgres_url() -> contextlib.AbstractContextManager[str]:
    """An admin DSN (a database we may CREATE DATABASE from)."""
    return _resolve(
        "MOTIONLEDGER_TEST_DATABASE_URL",
        LOCAL_POSTGRES,
        lambda: _listening("127.0.0.1", 5432) and asyncio.run(answers(LOCAL_POSTGRES)),
        "postgres",
        _embedded_postgres,
    )


def nats_url() -> contextlib.AbstractContextManager[str]:
    return _resolve(
        "MOTIONLEDGER_TEST_NATS_URL",
        LOCAL_NATS,
        lambda: _listening("127.0.0.1", 4222) and _nats_has_jetstream(LOCAL_NATS),
        "nats",
        _embedded_nats,
    )
