"""The console script as an operator uses it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client

import motionledger
from motionledger.adapters.embedded.processes import free_port
from motionledger.settings import Settings
from tests.support import databases
from tests.support import events as ev
from tests.support.chainlog import seed_log
from tests.support.ledger import running_ledger, settings_env

from .test_ingest import wait_for_seq


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "motionledger", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_schema_lists_every_event(settings: Settings) -> None:
    result = await asyncio.to_thread(run, settings, "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert {"SessionStarted", "DirectorEvent", "AssetCreated"} <= set(schema["$defs"])


async def test_migrate_twice(pg_admin_url: str, settings: Settings) -> None:
    url = await databases.create_database(pg_admin_url, migrated=False)
    try:
        fresh = settings.replace(database_url=url)
        first = await asyncio.to_thread(run, fresh, "migrate")
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("applied: 0001_ledger")
        second = await asyncio.to_thread(run, fresh, "migrate")
        assert second.stdout.strip() == "schema is up to date"
    finally:
        await databases.drop_database(pg_admin_url, url)


async def test_dead_letters_listing_filters_and_json(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    async with running_ledger(settings):
        await ev.publish_events(js, root, [ev.session_started("S1")])
        await ev.publish_raw(js, f"{root}.director.S1", b"\xff not json")
        await ev.publish_events(js, root, [ev.director("S2")])
        seqs = await ev.publish_events(js, root, [ev.camera_state("S1", "nope")])
        await wait_for_seq(db, settings.stream, seqs[-1])
    listed = await asyncio.to_thread(run, settings, "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [d["reason"] for d in letters] == ["invalid_json", "unknown_session", "unknown_camera"]
    assert letters[0]["rawEncoding"] == "base64"
    assert letters[1]["sessionId"] == "S2"
    assert json.loads(letters[1]["raw"])["sessionId"] == "S2"
    only = await asyncio.to_thread(
        run, settings, "dead-letters", "--json", "--reason", "unknown_camera"
    )
    assert [json.loads(line)["reason"] for line in only.stdout.splitlines()] == ["unknown_camera"]
    by_session = await asyncio.to_thread(run, settings, "dead-letters", "--json", "--session", "S2")
    assert len(by_session.stdout.splitlines()) == 1
    table = await asyncio.to_thread(run, settings, "dead-letters")
    assert "unknown_camera" in table.stdout


async def test_a_bad_setting_is_named_and_exits_2(settings: Settings) -> None:
    result = await asyncio.to_thread(run, settings.replace(http_port=0), "--help")
    assert result.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "motionledger", "schema"],
        env={**settings_env(settings), "MOTIONLEDGER_HTTP_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "MOTIONLEDGER_HTTP_PORT" in bad.stderr


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "motionledger", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"motionledger {motionledger.__version__}\n"


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["verify"], ["verify", "--json"], ["rebuild"], ["dead-letters"]],
    ids=["migrate", "verify", "verify-json", "rebuild", "dead-letters"],
)
async def test_an_unreachable_database_is_one_line_and_exit_2(
    settings: Settings, command: list[str]
) -> None:
    port = free_port()  # nothing listens there
    away = settings.replace(database_url=f"postgresql://someone:secret@127.0.0.1:{port}/ledger")
    done = await asyncio.to_thread(run, away, *command)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"motionledger {command[0]}: database unreachable (127.0.0.1:{port}): ")
    assert "secret" not in line


async def test_an_unreachable_broker_is_one_line_and_exit_2(settings: Settings) -> None:
    """`dead-letters replay` needs the broker too: it gives up after a few tries, saying so."""
    ports = free_port(), free_port()
    away = settings.replace(nats_url=",".join(f"nats://127.0.0.1:{port}" for port in ports))
    done = await asyncio.to_thread(run, away, "dead-letters", "replay", "--id", "1")
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"motionledger dead-letters replay: broker unreachable "
        f"(127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}): "
    )


async def test_config_goes_before_or_after_the_command_and_the_later_one_wins(
    settings: Settings, tmp_path: Path
) -> None:
    here = tmp_path / "here.toml"
    here.write_text(f'database_url = "{settings.database_url}"\n')
    away = tmp_path / "away.toml"
    away.write_text(f'database_url = "postgresql://root@127.0.0.1:{free_port()}/x"\n')
    env = {k: v for k, v in settings_env(settings).items() if k != "MOTIONLEDGER_DATABASE_URL"}

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "motionledger", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    after = await asyncio.to_thread(verify, "verify", "--config", str(here))
    assert after.returncode == 0, after.stderr
    before = await asyncio.to_thread(verify, "--config", str(here), "verify")
    assert before.returncode == 0, before.stderr
    later_wins = await asyncio.to_thread(
        verify, "--config", str(away), "verify", "--config", str(here)
    )
    assert later_wins.returncode == 0, later_wins.stderr
    other_way = await asyncio.to_thread(
        verify, "--config", str(here), "verify", "--config", str(away)
    )
    assert other_way.returncode == 2
    assert "database unreachable" in other_way.stderr


async def test_verify_json(settings: Settings, db: asyncpg.Connection) -> None:
    await seed_log(db, 300)
    done = await asyncio.to_thread(run, settings, "verify", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar off a terminal
    (line,) = done.stdout.splitlines()
    report = json.loads(line)
    head_hash = await db.fetchval("SELECT hash FROM ledger.events WHERE position = 300")
    assert report.pop("seconds") >= 0
    assert report.pop("rate") >= 0
    assert report == {
        "ok": True,
        "fromPosition": 1,
        "lastPosition": 300,
        "checked": 300,
        "headHash": bytes(head_hash).hex(),
        "broken": None,
    }
    tail = json.loads(
        (await asyncio.to_thread(run, settings, "verify", "--json", "--from", "201")).stdout
    )
    assert (tail["fromPosition"], tail["lastPosition"], tail["checked"]) == (201, 300, 100)

    async with db.transaction():
        await db.execute("ALTER TABLE ledger.events DISABLE TRIGGER events_append_only")
        await db.execute(
            'UPDATE ledger.events SET body = body || \'{"title": "x"}\' WHERE position = 1'
        )
        await db.execute("ALTER TABLE ledger.events ENABLE ALWAYS TRIGGER events_append_only")
    broken = await asyncio.to_thread(run, settings, "verify", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    assert report["broken"]["position"] == 1
    assert "does not match" in report["broken"]["problem"]
    assert (report["checked"], report["lastPosition"]) == (0, 0)


async def test_rebuild_json(settings: Settings, db: asyncpg.Connection) -> None:
    await seed_log(db, 200)
    done = await asyncio.to_thread(run, settings, "rebuild", "--json", "director_events")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar off a terminal, no sentence either
    (line,) = done.stdout.splitlines()
    summary = json.loads(line)
    assert summary["seconds"] > 0
    assert summary["rate"] >= 0
    assert {k: summary[k] for k in ("names", "position", "rows")} == {
        "names": ["director_events"],
        "position": 200,
        "rows": {"director_events": 199},
    }


def in_a_terminal(settings: Settings, *args: str) -> tuple[int, str, str]:
    """The command with stderr on a pseudo-terminal, as a person runs it: (status, stdout,
    what the terminal showed, without its colours)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "motionledger", *args],
        env={**settings_env(settings), "TERM": "xterm", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    process.stdout.close()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))  # no colours
    return process.wait(60), out, plain


async def test_verify_and_rebuild_show_progress_on_a_terminal_unless_quiet(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await seed_log(db, 300)
    status, out, shown = await asyncio.to_thread(in_a_terminal, settings, "verify")
    assert status == 0, shown
    assert "chain intact: positions 1..300" in out
    assert "verify" in shown
    assert "300/300" in shown
    status, out, shown = await asyncio.to_thread(in_a_terminal, settings, "verify", "--quiet")
    assert status == 0, shown
    assert shown == ""
    status, out, shown = await asyncio.to_thread(in_a_terminal, settings, "rebuild", "assets")
    assert status == 0, shown
    assert "300/300" in shown
    assert "rebuilt assets at position 300" in shown
    status, out, shown = await asyncio.to_thread(
        in_a_terminal, settings, "rebuild", "--quiet", "assets"
    )
    assert status == 0, shown
    assert "/300" not in shown
    assert "rebuilt assets at position 300" in shown
