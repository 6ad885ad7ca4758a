"""What the bench runs on, all of it its own and all of it removed afterwards.

- a private nats-server (the bundled binary) in a temporary directory, unless a broker URL
  is given — then only streams the bench creates are used, and deleted at the end;
- fresh PostgreSQL databases (`mlbench_<hex>`) on the given or local server (or a private
  embedded one), each dropped at the end;
- `motionledger serve` as a child process per measurement, with its writer lease held by
  the bench until the moment ingestion is to start, so process start-up never counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec
import nats
import psutil
from nats.js.errors import NotFoundError

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.embedded.postgres import PostgresProcess
from motionledger.adapters.embedded.processes import free_port
from motionledger.adapters.postgres.database import answers, connect, migrate, with_database
from motionledger.adapters.postgres.locks import Lock

LOCAL_POSTGRES = "postgresql://root@127.0.0.1:5432/postgres"


@dataclass
class Infra:
    """Broker, database server, and everything created on them (for cleanup)."""

    workdir: Path
    pg_admin_url: str = ""
    nats_url: str = ""
    databases: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    created: dict[str, list[str]] = field(
        default_factory=lambda: {"databases": [], "streams": []}
    )  # everything ever made here, for the record (and for tests to check it is gone)
    _nats: NatsProcess | None = None
    _postgres: PostgresProcess | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, pg_admin_url: str | None, nats_url: str | None) -> AsyncIterator[Infra]:
        tmp = tempfile.TemporaryDirectory(prefix="mlbench-")
        infra = cls(Path(tmp.name), _tmp=tmp)
        try:
            await infra._start_postgres(pg_admin_url)
            await infra._start_nats(nats_url)
            yield infra
        finally:
            await infra.cleanup()

    async def _start_postgres(self, url: str | None) -> None:
        url = (
            url
            or os.environ.get("MOTIONLEDGER_BENCH_DATABASE_URL")
            or os.environ.get("MOTIONLEDGER_TEST_DATABASE_URL")
        )
        if url is None and await answers(LOCAL_POSTGRES):
            url = LOCAL_POSTGRES
        if url is None:
            self._postgres = PostgresProcess(self.workdir / "postgres", database="postgres")
            await asyncio.to_thread(self._postgres.start)
            url = self._postgres.dsn("postgres")
        self.pg_admin_url = url

    async def _start_nats(self, url: str | None) -> None:
        if url:
            self.nats_url = url
            return
        self._nats = NatsProcess(self.workdir / "nats", name="motionledger-bench")
        self.nats_url = await asyncio.to_thread(self._nats.start)

    # -- databases and streams ----------------------------------------------------------
    async def database(self, *, migrated: bool = True) -> str:
        name = f"mlbench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self.pg_admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.databases.append(name)
        self.created["databases"].append(name)
        url = with_database(self.pg_admin_url, name)
        if migrated:
            conn = await connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        return url

    async def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        admin = await asyncpg.connect(self.pg_admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        with contextlib.suppress(ValueError):
            self.databases.remove(name)

    def new_stream(self) -> tuple[str, str]:
        """A stream name and subject root no one else uses."""
        tag = uuid.uuid4().hex[:10]
        self.streams.append(f"MLBENCH{tag}")
        self.created["streams"].append(f"MLBENCH{tag}")
        return f"MLBENCH{tag}", f"mlbench{tag}"

    async def cleanup(self) -> None:
        for daemon in list(self.daemons):
            daemon.stop()
        if self._nats is None and self.streams and self.nats_url:
            with contextlib.suppress(Exception):
                client = await nats.connect(self.nats_url, connect_timeout=2)
                for stream in self.streams:
                    with contextlib.suppress(NotFoundError):
                        await client.jetstream().delete_stream(stream)
                await client.close()
        if self.databases and self.pg_admin_url:
            with contextlib.suppress(Exception):
                admin = await asyncpg.connect(self.pg_admin_url)
                for name in self.databases:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
            self.databases.clear()
        if self._nats is not None:
            await asyncio.to_thread(self._nats.stop)
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)
        if self._tmp is not None:
            self._tmp.cleanup()

    def env(self, database_url: str, stream: str, root: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
        env.update(
            MOTIONLEDGER_NATS_URL=self.nats_url,
            MOTIONLEDGER_DATABASE_URL=database_url,
            MOTIONLEDGER_STREAM=stream,
            MOTIONLEDGER_SUBJECT_ROOT=root,
            MOTIONLEDGER_HTTP_PORT=str(port),
            MOTIONLEDGER_LOG_FORMAT="json",
            MOTIONLEDGER_STREAM_MAX_AGE="1h",
        )
        return env


class Daemon:
    """`motionledger serve` as a child; `held()` keeps it standing by until `release()`."""

    def __init__(self, infra: Infra, database_url: str, stream: str, root: str) -> None:
        self.infra = infra
        self.database_url = database_url
        self.stream, self.root = stream, root
        self.port = free_port()
        self.log_path = infra.workdir / f"serve-{stream}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._lease: asyncpg.Connection | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    async def start(self, *, hold: bool) -> Daemon:
        """Start serve; with `hold`, the bench owns the writer lease, so serve waits."""
        if hold:
            self._lease = await asyncpg.connect(self.database_url)
            await self._lease.execute("SELECT pg_advisory_lock($1)", int(Lock.WRITER))
        env = self.infra.env(self.database_url, self.stream, self.root, self.port)
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 - a moment, once per run
            self.process = subprocess.Popen(  # noqa: ASYNC220 - psutil and signals want Popen
                [sys.executable, "-m", "motionledger", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.infra.daemons.append(self)
        await self.wait_role("standby" if hold else "active")
        return self

    async def wait_role(self, role: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"serve exited {self.process.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                    body = (await http.get(f"{self.base_url}/readyz")).json()
                    if body["result"]["checks"]["ingest"]["detail"]["role"] == role:
                        return
                await asyncio.sleep(0.05)
        raise TimeoutError(f"serve never became {role}: {self.tail()}")

    async def release(self) -> None:
        """Let serve take the writer lease: ingestion starts now."""
        assert self._lease is not None
        await self._lease.execute("SELECT pg_advisory_unlock($1)", int(Lock.WRITER))
        await self._lease.close()
        self._lease = None

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def peak_rss_bytes(self) -> int:
        """VmHWM: the most resident memory the process has had."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return int(self.ps.memory_info().rss)

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(f"{self.base_url}/metrics")).text

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        with contextlib.suppress(ValueError):
            self.infra.daemons.remove(self)
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def decode_json(data: bytes) -> Any:
    return msgspec.json.decode(data)
