"""What an embedded start finds after an earlier run that did not end cleanly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from motionledger.adapters.embedded import (
    NatsProcess,
    PostgresProcess,
    nats_port,
    pgbinaries,
    postgres,
    processes,
)


@pytest.fixture
def closed_dir() -> Iterator[Path]:
    """A 0700 directory of ours: as root, the database's service user cannot walk into it."""
    path = Path(tempfile.mkdtemp(prefix="mlt-left-"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


async def test_a_postmaster_left_running_is_replaced_and_its_data_kept(closed_dir: Path) -> None:
    old = PostgresProcess(closed_dir / "pg")
    conn = await asyncpg.connect(old.start())
    await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
    await conn.close()

    new = PostgresProcess(closed_dir / "pg")  # as a later run would, knowing nothing of `old`
    assert new.externally_running()
    try:
        conn = await asyncpg.connect(new.start())
        assert await conn.fetchval("SELECT v FROM kept") == 7
        await conn.close()
        assert old.process is not None
        assert old.process.wait(5) == 0
        assert new.postmaster_pid() == new.process.pid  # type: ignore[union-attr]
    finally:
        new.stop()
        old.stop()
    assert list(processes.using(closed_dir)) == []


def test_a_nats_server_left_running_is_stopped_before_a_second_opens_its_store(
    closed_dir: Path,
) -> None:
    old = NatsProcess(closed_dir / "nats")
    old.start()
    new = NatsProcess(closed_dir / "nats")
    try:
        new.start()
        assert old.process is not None
        assert old.process.wait(5) is not None
        assert new.ports() == [new.url]
    finally:
        new.stop()
        old.stop()
    assert list(processes.using(closed_dir)) == []


def test_the_nats_port_prefers_the_standard_one_then_the_last_one(closed_dir: Path) -> None:
    store = closed_dir / "nats"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        first = nats_port(store, "127.0.0.1", preferred=taken)
        assert first != taken
        assert (store / "port").read_text() == str(first)
        assert nats_port(store, "127.0.0.1", preferred=taken) == first  # remembered
    assert nats_port(store, "127.0.0.1", preferred=taken) == taken  # the standard one is free


@pytest.mark.skipif(os.geteuid() != 0, reason="the service user exists only when run as root")
async def test_binaries_out_of_the_service_users_reach_are_copied(
    closed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv under /root: the server's user could not even exec initdb from it."""
    wheel_bin = pgbinaries.postgres_bin_dir()
    install = wheel_bin.parent
    hidden = closed_dir / "site" / install.parent.name / install.name
    shutil.copytree(install, hidden, ignore=shutil.ignore_patterns("include"))
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, closed_dir / "site" / libs.name)
    cache = Path(tempfile.mkdtemp(prefix="mlt-cache-"))
    cache.chmod(0o755)
    monkeypatch.setattr(pgbinaries, "SERVER_CACHE", cache / "motionledger")
    monkeypatch.setattr(postgres, "postgres_bin_dir", lambda *_: hidden / "bin")
    user = pgbinaries.service_user()
    assert user is not None
    assert not pgbinaries.reachable_by(hidden / "bin", user)
    try:
        server = PostgresProcess(closed_dir / "pg")
        assert server.server_bin.is_relative_to(cache)
        conn = await asyncpg.connect(server.start())
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        server.stop()
        # a second start reuses the copy
        assert PostgresProcess(closed_dir / "pg").server_bin == server.server_bin
    finally:
        subprocess.run(["rm", "-rf", str(cache)], check=False)
