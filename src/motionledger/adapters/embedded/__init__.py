"""Embedded NATS and PostgreSQL for a bare machine: `serve` with a URL unset runs its own.

Data lives under `data_dir` (default ./var) and survives restarts. One `serve` at a time
owns the directory (an flock the kernel releases however the process ends, so a stale lock
recovers by itself); the servers die with it (see processes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from ... import logs
from ...settings import Settings
from .nats import NatsProcess
from .postgres import PostgresProcess
from .processes import free_port, port_is_free

log = logs.get(__name__)
STANDARD_NATS_PORT = 4222


class DataDirBusy(RuntimeError):
    pass


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[IO[str]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "serve.lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise DataDirBusy(
                f"{data_dir} is in use by another motionledger (pid {owner}); "
                "stop it or set MOTIONLEDGER_DATA_DIR"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield handle
    finally:
        handle.close()


def _nats_port(store: Path) -> int:
    """The standard port when free (producers expect it), else the one used last time, so
    producers need not be told again, else any free one (remembered for next time)."""
    remembered = store / "port"
    candidates = [STANDARD_NATS_PORT]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int(remembered.read_text()))
    port = next((p for p in candidates if port_is_free(p)), None) or free_port()
    store.mkdir(parents=True, exist_ok=True)
    remembered.write_text(str(port))
    return port


def _banner(settings: Settings, data_dir: Path) -> None:
    lines = [
        "motionledger is running (embedded mode)",
        f"  HTTP       http://{settings.http_host}:{settings.http_port}",
        f"  NATS       {settings.nats_url}   <- producers publish here",
        f"  database   {settings.database_url}",
        f"  data       {data_dir}",
        "  stop       Ctrl-C (or SIGTERM)",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Settings]:
    """Start what is not configured, yield settings pointing at it, stop it afterwards."""
    data_dir = Path(settings.data_dir).resolve()
    with _exclusive(data_dir):
        async with contextlib.AsyncExitStack() as stack:
            changes: dict[str, str] = {}
            if settings.database_url is None:
                postgres = PostgresProcess(data_dir / "postgres")
                stack.callback(postgres.stop)
                changes["database_url"] = await asyncio.to_thread(postgres.start)
                log.info("embedded_postgres_started", data=str(postgres.pgdata))
            if settings.nats_url is None:
                nats = NatsProcess(data_dir / "nats", port=_nats_port(data_dir / "nats"))
                stack.callback(nats.stop)
                changes["nats_url"] = await asyncio.to_thread(nats.start)
                log.info("embedded_nats_started", url=nats.url)
            effective = settings.replace(**changes)
            _banner(effective, data_dir)
            yield effective


@contextlib.asynccontextmanager
async def database_for_command(settings: Settings) -> AsyncIterator[str]:
    """The DSN a one-shot command uses: the configured database, else the embedded one
    (the running `serve`'s, or started just for this command)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    data_dir = Path(settings.data_dir).resolve()
    postgres = PostgresProcess(data_dir / "postgres")
    if postgres.externally_running():
        yield postgres.dsn()
        return
    if not postgres.initialised():
        raise RuntimeError(
            f"no database configured and none under {data_dir}: set MOTIONLEDGER_DATABASE_URL "
            "or run `motionledger serve` once"
        )
    with _exclusive(data_dir):
        dsn = await asyncio.to_thread(postgres.start)
        try:
            yield dsn
        finally:
            await asyncio.to_thread(postgres.stop)
