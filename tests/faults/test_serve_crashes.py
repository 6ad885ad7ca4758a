"""The daemon itself dies under a steady mixed load: SIGKILLed every ~2 s and restarted,
and a hot standby taking over when the active one is killed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from motionledger.adapters.embedded.processes import free_port
from motionledger.settings import Settings
from tests.support.faults import finish, role
from tests.support.ledger import ServeProcess
from tests.support.load import Load, Running


async def test_serve_sigkilled_every_two_seconds(settings: Settings, tmp_path: Path) -> None:
    assert settings.nats_url is not None
    serve = ServeProcess(settings, tmp_path / "serve-0.log").start()
    try:
        await serve.wait_ready()
        running = Running(Load(settings.nats_servers, settings.subject_root, rate=400))
        await running.wait_count(50)
        for kill in range(1, 6):
            await asyncio.sleep(2)
            serve.kill()  # SIGKILL: mid-batch, mid-projection, wherever it is
            serve = ServeProcess(settings, tmp_path / f"serve-{kill}.log").start()
        await serve.wait_ready()
        await finish(settings, running, serve)
    finally:
        serve.kill()


async def test_standby_takes_over_when_the_active_serve_is_killed(
    settings: Settings, tmp_path: Path
) -> None:
    first = ServeProcess(settings, tmp_path / "a.log").start()
    second = ServeProcess(settings.replace(http_port=free_port()), tmp_path / "b.log")
    try:
        await first.wait_ready()
        second.start()
        await second.wait_ready(active=False)
        serves = {"a": first, "b": second}
        roles = {name: await role(s.base_url) for name, s in serves.items()}
        assert sorted(roles.values()) == ["active", "standby"], roles
        running = Running(Load(settings.nats_servers, settings.subject_root, rate=400))
        await running.wait_count(200)
        # still exactly one ingests while the load runs
        roles = {name: await role(s.base_url) for name, s in serves.items()}
        assert sorted(roles.values()) == ["active", "standby"], roles
        active = next(name for name, r in roles.items() if r == "active")
        standby = "b" if active == "a" else "a"
        serves[active].kill()
        killed_at = time.monotonic()
        await serves[standby].wait_ready(timeout=30)
        takeover = time.monotonic() - killed_at
        print(f"standby took over in {takeover:.2f} s")
        assert takeover < 10, f"standby took {takeover:.1f} s to take over"
        await running.wait_count(running.load.count + 200)
        await finish(settings, running, serves[standby])
    finally:
        first.kill()
        second.kill()
