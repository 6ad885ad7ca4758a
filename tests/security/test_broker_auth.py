"""The broker side of least privilege: the daemon connects with user:password in the URL,
or with a `.creds` file over `tls://` with a private CA; producers may only publish events;
only the daemon reads the stream; a client without credentials gets nowhere."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.nats.broker import INBOX_PREFIX
from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import ServeProcess, running_ledger
from tests.support.natsauth import (
    daemon_permissions,
    make_tls,
    operator_mode,
    password_config,
    producer_permissions,
    tls_block,
)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[list[NatsProcess]]:
    servers: list[NatsProcess] = []
    yield servers
    for server in servers:
        server.stop()


def start_nats(servers: list[NatsProcess], directory: Path, config: str) -> NatsProcess:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nats.conf"
    conf.write_text(config)
    server = NatsProcess(directory / "store", args=["-c", str(conf)])
    servers.append(server)
    server.start()
    return server


async def wait_logged(db: asyncpg.Connection, seq: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (await db.fetchval("SELECT stream_seq FROM ledger.ingest_state") or 0) < seq:
        assert time.monotonic() < deadline, f"ingest did not reach stream sequence {seq}"
        await asyncio.sleep(0.02)


async def refused_connect(url: str, **options: object) -> str:
    """Connect, expecting a refusal; returns its message."""
    try:
        client = await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **options
        )
    except Exception as error:
        return str(error) or type(error).__name__
    await client.close()
    raise AssertionError(f"{url} accepted a client it should refuse")


async def logged_ids(db: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")]


async def test_password_users_producers_publish_only_the_daemon_reads(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, private_nats: list[NatsProcess]
) -> None:
    root, stream = settings.subject_root, settings.stream
    passwords = {"ledger": secrets.token_hex(8), "producer": secrets.token_hex(8)}
    server = start_nats(private_nats, tmp_path, password_config(root, passwords))
    host = f"127.0.0.1:{server.port}"

    # nobody without a password, nor with a wrong one
    assert "Authorization" in await refused_connect(f"nats://{host}")
    assert "Authorization" in await refused_connect(f"nats://producer:wrong@{host}")

    violations: list[str] = []

    async def on_error(error: Exception) -> None:
        violations.append(str(error))

    ledger = settings.replace(nats_url=f"nats://ledger:{passwords['ledger']}@{host}")
    async with running_ledger(ledger):
        producer: Client = await nats.connect(
            f"nats://producer:{passwords['producer']}@{host}", error_cb=on_error
        )
        try:
            js = producer.jetstream(timeout=1)
            first = [ev.session_started("S1"), ev.camera_upserted("S1", "c1")]
            await wait_logged(db, (await ev.publish_events(js, root, first))[-1])

            # a producer cannot read the stream: no API, no consumers, no eavesdropping
            snoop_events = await producer.subscribe(f"{root}.>")
            snoop_daemon = await producer.subscribe(f"{INBOX_PREFIX}.>")
            for attempt in (
                js.stream_info(stream),
                js.pull_subscribe(f"{root}.>", durable="snoop", stream=stream),
                js.delete_stream(stream),
            ):
                with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
                    await attempt
            await producer.publish("elsewhere.subject", b"{}")
            await producer.flush()

            more = [ev.director("S1", cameraId="c1") for _ in range(20)]
            await wait_logged(db, (await ev.publish_events(js, root, more))[-1])
            await asyncio.sleep(0.2)
            assert snoop_events.pending_msgs == 0
            assert snoop_daemon.pending_msgs == 0
        finally:
            await producer.close()

    text = " | ".join(violations).lower()  # nats-py lowercases the server's -ERR
    assert f'subscription to "{root}.>"' in text
    assert f'subscription to "{INBOX_PREFIX}.>"'.lower() in text
    assert f'publish to "$js.api.stream.info.{stream}"'.lower() in text
    assert f'publish to "$js.api.stream.delete.{stream}"'.lower() in text
    assert 'publish to "elsewhere.subject"' in text
    assert await logged_ids(db) == [e["eventId"] for e in first + more]
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0


async def test_creds_file_over_tls_with_a_private_ca(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, private_nats: list[NatsProcess]
) -> None:
    root = settings.subject_root
    tls = make_tls(tmp_path / "tls")
    operator = operator_mode(
        tmp_path / "operator",
        {"ledger": daemon_permissions(root), "producer": producer_permissions(root)},
    )
    server = start_nats(private_nats, tmp_path, operator.config + tls_block(tls))
    url = f"tls://127.0.0.1:{server.port}"
    trusted = ssl.create_default_context(cafile=str(tls.ca))

    # no CA: the server's certificate is not trusted; no creds: not authorized
    assert "CERTIFICATE_VERIFY_FAILED" in await refused_connect(
        url, user_credentials=str(operator.creds["producer"])
    )
    assert "Authorization" in await refused_connect(url, tls=trusted)

    ledger = settings.replace(
        nats_url=url,
        nats_creds=str(operator.creds["ledger"]),
        nats_tls_ca=str(tls.ca),
    )
    # a real `serve`, configured by MOTIONLEDGER_NATS_URL / _NATS_CREDS / _NATS_TLS_CA
    serve = ServeProcess(ledger, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        producer = await nats.connect(
            url, tls=trusted, user_credentials=str(operator.creds["producer"])
        )
        try:
            js = producer.jetstream(timeout=2)
            events = [ev.session_started("S1"), *(ev.director("S1") for _ in range(10))]
            await wait_logged(db, (await ev.publish_events(js, root, events))[-1])
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
                await js.stream_info(settings.stream)
        finally:
            await producer.close()
        assert serve.terminate() == 0
    finally:
        serve.kill()
    assert await logged_ids(db) == [e["eventId"] for e in events]
