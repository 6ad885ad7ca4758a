"""`motionledger serve` on a bare machine, driven exactly as a new user would: a fresh
directory, no URLs set, the embedded NATS and PostgreSQL under ./var.

One test walks the whole life (a second `serve` per directory costs seconds, so the
phases share one directory): start, write over NATS, a second `serve` refused, SIGTERM
(exit 0, nothing left running), a one-shot command on the stopped data, start again and
read back, SIGKILL (nothing left running), then a crash of `serve` *and* its postmaster
in the middle of a burst of writes, after which a restart recovers and every event is in
the log exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest

from motionledger.adapters.embedded import processes
from tests.support import events

pytestmark = pytest.mark.timeout(180)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
    env["MOTIONLEDGER_HTTP_PORT"] = str(processes.free_port())
    env["MOTIONLEDGER_LOG_FORMAT"] = "json"
    if processes.port_is_free(4222):
        # never take the standard port on a shared machine: other test runs look there
        env["MOTIONLEDGER_EMBEDDED_NATS_PORT"] = str(processes.free_port())
    return env


class Serve:
    def __init__(self, cwd: Path, env: dict[str, str], name: str) -> None:
        self.cwd, self.env = cwd, env
        self.log_path = cwd / f"{name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motionledger", "serve"],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, timeout: float = 60) -> dict[str, str]:
        """Waits for /readyz and an active writer; returns the banner's addresses."""
        url = f"http://127.0.0.1:{self.env['MOTIONLEDGER_HTTP_PORT']}/readyz"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"serve exited {self.process.returncode}:\n{self.output()}"
                    )
                try:
                    response = await http.get(url)
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 200:
                    ingest = response.json()["result"]["checks"]["ingest"]["detail"]
                    banner = dict(
                        re.findall(r"^  (HTTP|NATS|database|data)\s+(\S+)", self.output(), re.M)
                    )
                    if ingest["role"] == "active" and len(banner) == 4:
                        return banner
                await asyncio.sleep(0.05)
        raise AssertionError(f"serve not ready:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(60)


def _command(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "motionledger", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _leftovers(var: Path, timeout: float = 15) -> list[str]:
    """Processes still working in var/ once they have had `timeout` to go."""
    deadline = time.monotonic() + timeout
    while True:
        pids = list(processes.using(var))
        if not pids or time.monotonic() > deadline:
            return [" ".join(processes.process_argv(p)) or str(p) for p in pids]
        time.sleep(0.1)


async def _publish(nats_url: str, batch: list[dict[str, object]]) -> None:
    client = await nats.connect(nats_url)
    try:
        await events.publish_events(client.jetstream(), "production", batch)
    finally:
        await client.close()


async def _log_ids(dsn: str, expected: int, timeout: float = 30, poll: float = 0.05) -> set[str]:
    """The log's eventIds once it holds at least `expected` events."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            rows = await conn.fetch("SELECT event_id FROM ledger.events")
            if len(rows) >= expected or time.monotonic() > deadline:
                return {r["event_id"] for r in rows}
            await asyncio.sleep(poll)
    finally:
        await conn.close()


@pytest.fixture
def bare_dir() -> Iterator[Path]:
    # mkdtemp makes a 0700 directory owned by us: as root, the database's service user
    # cannot even walk into it — which is the point
    path = Path(tempfile.mkdtemp(prefix="mlt-bare-"))
    yield path
    for pid in processes.using(path / "var"):  # a failed test must not leave servers
        os.kill(pid, signal.SIGKILL)
    if not os.environ.get("MLT_KEEP"):
        subprocess.run(["rm", "-rf", str(path)], check=False)


async def test_bare_machine_life(bare_dir: Path) -> None:
    env = _env()
    var = bare_dir / "var"

    # -- first start: fresh directory, no URLs --------------------------------------
    first = Serve(bare_dir, env, "serve-1")
    banner = await first.ready()
    assert banner["data"] == str(var)
    port = env.get("MOTIONLEDGER_EMBEDDED_NATS_PORT") or (var / "nats" / "port").read_text()
    assert banner["NATS"] == f"nats://127.0.0.1:{port}"  # remembered for the next start
    started = events.session_started("bare1")
    orphan = events.director("nobody")  # rejected: unknown_session
    await _publish(banner["NATS"], [started, orphan])
    assert started["eventId"] in await _log_ids(banner["database"], 1)

    # a second serve on the same ./var is refused, plainly
    second = _command(
        bare_dir, {**env, "MOTIONLEDGER_HTTP_PORT": str(processes.free_port())}, "serve"
    )
    assert second.returncode == 2, second.stderr  # it cannot run here: exit 2, one line
    assert "in use by another motionledger" in second.stderr

    # a one-shot command while serve runs uses serve's database
    listed = _command(bare_dir, env, "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["reason"] for line in listed.stdout.splitlines()] == [
        "unknown_session"
    ]

    assert first.stop(signal.SIGTERM) == 0
    assert _leftovers(var, timeout=0) == []

    # -- a one-shot command on stopped data starts and stops its own database ------------
    listed = _command(bare_dir, env, "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1
    assert _leftovers(var, timeout=0) == []

    # -- restart: the data survived; then SIGKILL leaves nothing behind ----------------
    again = Serve(bare_dir, env, "serve-2")
    banner2 = await again.ready()
    assert banner2["NATS"] == banner["NATS"]  # producers need not be told anything new
    assert started["eventId"] in await _log_ids(banner2["database"], 1)
    more = events.session_started("bare2")
    await _publish(banner2["NATS"], [more])
    assert more["eventId"] in await _log_ids(banner2["database"], 2)
    again.stop(signal.SIGKILL)
    assert _leftovers(var) == []

    # -- crash mid-write: serve and its postmaster SIGKILLed during a burst -------------
    third = Serve(bare_dir, env, "serve-3")
    banner3 = await third.ready()
    burst = [events.session_started("bare3")] + [events.director("bare3") for _ in range(10_000)]
    third.process.send_signal(signal.SIGSTOP)  # the burst waits in the stream...
    await _publish(banner3["NATS"], burst)
    postmaster = processes.read_pid(var / "postgres" / "data" / "postmaster.pid")
    assert postmaster is not None
    third.process.send_signal(signal.SIGCONT)  # ...and the kill lands while it is ingested
    await _log_ids(banner3["database"], 3, timeout=10, poll=0.005)
    os.kill(postmaster, signal.SIGKILL)
    third.stop(signal.SIGKILL)
    assert _leftovers(var) == []

    last = Serve(bare_dir, env, "serve-4")
    banner4 = await last.ready()
    everything = {started["eventId"], more["eventId"]} | {e["eventId"] for e in burst}
    ids = await _log_ids(banner4["database"], len(everything))
    assert ids == everything  # all there, none twice (event_id is unique), none lost
    assert "automatic recovery in progress" in (var / "postgres" / "postgres.log").read_text()
    assert last.stop(signal.SIGTERM) == 0
    assert _leftovers(var, timeout=0) == []
