"""Running the ledger in a test: in-process (fast) or as a real `serve` subprocess (to kill)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec

from motionledger.daemon import Runtime, serve
from motionledger.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
    for name, value in msgspec.structs.asdict(settings).items():
        if value is not None:
            env[f"MOTIONLEDGER_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    return env


@contextlib.asynccontextmanager
async def running_ledger(settings: Settings, timeout: float = 20) -> AsyncIterator[Runtime]:
    """`serve` in this event loop; yields once it ingests. Stops (drains) on exit."""
    stop = asyncio.Event()
    ready: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(settings, stop=stop, started=ready.set_result))
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()
            raise RuntimeError("serve returned before it was ready")
        if ready not in done:
            raise TimeoutError("serve did not start")
        res = ready.result()
        deadline = time.monotonic() + timeout
        while not (res.ingestor and res.ingestor.active and res.ingestor.ingesting):
            if time.monotonic() > deadline:
                raise TimeoutError("ingestion did not become active")
            await asyncio.sleep(0.02)
        yield res
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class ServeProcess:
    """`motionledger serve` as a child process, to be killed, paused or stopped by tests."""

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None):
        self.settings = settings
        self.log_path = log_path
        self.env = {**settings_env(settings), **(extra_env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def start(self) -> ServeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motionledger", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    async def wait_ready(self, timeout: float = 30, *, active: bool = True) -> dict:
        """Until /readyz says ready (and, with `active`, this process ingests)."""
        deadline = time.monotonic() + timeout
        last: object = None
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"serve exited {self.process.returncode}:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"{self.base_url}/readyz")
                    last = response.json()
                    if response.status_code == 200:
                        role = response.json()["result"]["checks"]["ingest"]["detail"]["role"]
                        if not active or role == "active":
                            return response.json()
                await asyncio.sleep(0.05)
        raise TimeoutError(f"serve not ready: {last}\n{self.tail()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
