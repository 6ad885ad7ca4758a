"""Embedded NATS and PostgreSQL for a bare machine: `serve` with a URL unset runs its own.

Data lives under `data_dir` (default ./var) and survives restarts. One `serve` at a time
owns the directory (an flock the kernel releases however the process ends, so a stale lock
recovers by itself); the servers die with it (see processes.py), and a server an earlier
crashed run left behind is found through its pid file and stopped before ours starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import IO, Any

from ... import logs
from ...errors import EmbeddedError
from ...settings import Settings
from .nats import NatsProcess
from .postgres import PostgresProcess
from .processes import free_port, port_is_free

__all__ = [
    "DataDirBusy",
    "EmbeddedError",
    "NatsProcess",
    "PostgresProcess",
    "banner",
    "broker_for_command",
    "database_for_command",
    "free_port",
    "nats_port",
    "running",
]

log = logs.get(__name__)
STANDARD_NATS_PORT = 4222


class DataDirBusy(EmbeddedError):
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
                f"{data_dir} is in use by another motionledger (pid {owner}); stop it, "
                "or give this one its own MOTIONLEDGER_DATA_DIR"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield handle
    finally:
        handle.close()


def nats_port(store: Path, host: str, preferred: int = STANDARD_NATS_PORT) -> int:
    """The standard port when free (producers expect it), else the one used last time, so
    producers need not be told again, else any free one (remembered for next time)."""
    remembered = store / "port"
    candidates = [preferred]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int(remembered.read_text()))
    port = next((p for p in candidates if p and port_is_free(p, host)), None)
    port = port or free_port(host)
    store.mkdir(parents=True, exist_ok=True)
    remembered.write_text(str(port))
    return port


def broker_for_command(settings: Settings) -> str | None:
    """The broker a one-shot command talks to: the configured one, else the embedded one a
    `serve` runs (its port pinned by settings, or remembered under data_dir); None if none."""
    if settings.nats_url:
        return settings.nats_url
    if settings.embedded_nats_port:
        return f"nats://127.0.0.1:{settings.embedded_nats_port}"
    with contextlib.suppress(OSError, ValueError):
        port = int((Path(settings.data_dir) / "nats" / "port").read_text())
        return f"nats://127.0.0.1:{port}"
    return None


def banner(settings: Settings) -> str:
    """What a person needs after `make run`: where to point a browser, producers, psql."""
    data_dir = Path(settings.data_dir).resolve()
    public = settings.http_host
    if public in ("", "0.0.0.0", "::"):  # noqa: S104 - listening everywhere: name the machine
        public = socket.gethostname()
    nats_url = settings.nats_url or ""
    return "\n".join(
        [
            "motionledger is running (embedded mode: its own NATS and PostgreSQL)",
            f"  HTTP       http://{public}:{settings.http_port}",
            f"  NATS       {nats_url}   <- producers publish here",
            f"  database   {settings.database_url}",
            f"  data       {data_dir}",
            "  stop       Ctrl-C (or SIGTERM); the data stays for the next start",
        ]
    )


def print_banner(settings: Settings) -> None:
    print(banner(settings), file=sys.stderr, flush=True)


def _client_host(host: str) -> str:
    """Where a local client reaches a server listening on `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104


async def _ready(what: str, wait: Callable[[], None], log_path: Path) -> None:
    try:
        await asyncio.to_thread(wait)
    except Exception as error:
        raise EmbeddedError(f"embedded {what} did not start ({log_path}): {error}") from error


@contextlib.contextmanager
def _starting(what: str) -> Iterator[None]:
    """Any failure to set a server up becomes one plain message, not a traceback."""
    try:
        yield
    except EmbeddedError:
        raise
    except Exception as error:
        raise EmbeddedError(f"embedded {what} did not start: {error}") from error


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Settings]:
    """Start what is not configured, yield settings pointing at it, stop it afterwards."""
    data_dir = Path(settings.data_dir).resolve()
    with _exclusive(data_dir):
        async with contextlib.AsyncExitStack() as stack:
            changes: dict[str, str] = {}
            waits: list[Coroutine[Any, Any, None]] = []
            # spawned here, on the loop's thread (it outlives them); waited for in threads
            if settings.database_url is None:
                with _starting("PostgreSQL"):
                    postgres = PostgresProcess(data_dir / "postgres")
                    stack.callback(postgres.stop)
                    await asyncio.to_thread(postgres.prepare)  # initdb the first time
                    postgres.launch()
                waits.append(_ready("PostgreSQL", postgres.wait_ready, postgres.log_path))
                changes["database_url"] = postgres.dsn()
            if settings.nats_url is None:
                with _starting("NATS"):
                    store = data_dir / "nats"
                    # loopback only, whatever the HTTP address: this broker has no users,
                    # and publishing to it is writing to the ledger. Producers on other
                    # hosts need a real broker with credentials (MOTIONLEDGER_NATS_URL).
                    host = "127.0.0.1"
                    port = settings.embedded_nats_port or nats_port(store, host)
                    nats = NatsProcess(store, host=host, port=port)
                    stack.callback(nats.stop)
                    nats.launch()
                waits.append(_ready("NATS", nats.wait_ready, nats.log_path))
                changes["nats_url"] = f"nats://{_client_host(host)}:{port}"
            failures = [
                outcome
                for outcome in await asyncio.gather(*waits, return_exceptions=True)
                if isinstance(outcome, BaseException)
            ]
            if failures:
                raise failures[0]
            log.info("embedded_servers_started", data=str(data_dir), **changes)
            yield settings.replace(**changes)


@contextlib.asynccontextmanager
async def database_for_command(settings: Settings) -> AsyncIterator[str]:
    """The DSN a one-shot command uses: the configured database, else the embedded one
    (the running `serve`'s, or started just for this command)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    data_dir = Path(settings.data_dir).resolve()
    with _starting("PostgreSQL"):
        postgres = PostgresProcess(data_dir / "postgres")
    if postgres.externally_running():
        yield postgres.dsn()
        return
    if not postgres.initialised():
        raise EmbeddedError(
            f"no database configured and none under {data_dir}: set MOTIONLEDGER_DATABASE_URL "
            "or run `motionledger serve` once"
        )
    with _exclusive(data_dir):
        try:
            with _starting("PostgreSQL"):
                postgres.launch()
            await _ready("PostgreSQL", postgres.wait_ready, postgres.log_path)
            yield postgres.dsn()
        finally:
            await asyncio.to_thread(postgres.stop)
