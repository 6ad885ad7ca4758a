"""The console script as an operator uses it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import asyncpg
from nats.aio.client import Client

from motionledger.settings import Settings
from tests.support import databases
from tests.support import events as ev
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
