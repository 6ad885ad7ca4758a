"""Tamper evidence: `motionledger verify` recomputes the hash chain and names the first row
that was changed behind the database's back (triggers disabled by a superuser)."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest

from motionledger.services.verify import verify_chain
from motionledger.settings import Settings
from tests.support.chainlog import seed_log
from tests.support.ledger import settings_env

ROWS = 2_500
PAGE = 1_000  # several pages, so breaks at and across page boundaries are covered


async def behind_the_triggers(db: asyncpg.Connection, *statements: str) -> None:
    """What an attacker with superuser rights does: switch the guard off, edit, switch it on."""
    async with db.transaction():
        await db.execute("ALTER TABLE ledger.events DISABLE TRIGGER events_append_only")
        for statement in statements:
            await db.execute(statement)
        await db.execute("ALTER TABLE ledger.events ENABLE ALWAYS TRIGGER events_append_only")


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = settings_env(Settings(database_url=database_url, nats_url="nats://unused:1"))
    return subprocess.run(
        [sys.executable, "-m", "motionledger", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_untouched_log_verifies_whole_and_from_a_position(
    db: asyncpg.Connection, database_url: str
) -> None:
    empty = await verify_chain(db)
    assert empty.ok
    assert empty.checked == 0
    await seed_log(db, ROWS)
    whole = await verify_chain(db, page_rows=PAGE)
    assert whole.ok, whole.broken
    assert (whole.checked, whole.last_position) == (ROWS, ROWS)
    assert whole.last_hash == bytes(
        await db.fetchval("SELECT hash FROM ledger.events WHERE position = $1", ROWS)
    )
    tail = await verify_chain(db, from_position=PAGE + 1, page_rows=PAGE)
    assert tail.ok
    assert tail.checked == ROWS - PAGE
    result = run_cli(database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"chain intact: positions 1..{ROWS}" in result.stdout
    assert "events/s" in result.stdout
    beyond = run_cli(database_url, "--from", str(ROWS + 5))
    assert beyond.returncode == 2
    assert "ends at position" in beyond.stderr


@pytest.mark.parametrize(
    ("position", "edit"),
    [
        (
            1234,
            "UPDATE ledger.events SET body = jsonb_set(body, '{score}', '99') WHERE position = 1234",
        ),
        (1, 'UPDATE ledger.events SET body = body || \'{"title": "forged"}\' WHERE position = 1'),
        (PAGE, "UPDATE ledger.events SET event_id = 'forged' WHERE position = 1000"),
        (PAGE + 1, "UPDATE ledger.events SET hash = sha256('x') WHERE position = 1001"),
        (2_000, "UPDATE ledger.events SET session_id = 'other' WHERE position = 2000"),
        (2_001, "UPDATE ledger.events SET timestamp_ms = 5 WHERE position = 2001"),
        (ROWS, "UPDATE ledger.events SET body = body - 'metadata' WHERE position = 2500"),
        (777, "DELETE FROM ledger.events WHERE position = 777"),
    ],
    ids=[
        "body",
        "first-row",
        "event-id",
        "hash",
        "session-column",
        "timestamp-column",
        "last-row",
        "deleted-row",
    ],
)
async def test_a_row_edited_behind_the_triggers_is_named(
    db: asyncpg.Connection, database_url: str, position: int, edit: str
) -> None:
    await seed_log(db, ROWS)
    await behind_the_triggers(db, edit)
    report = await verify_chain(db, page_rows=PAGE)
    assert report.broken is not None
    assert report.broken.position == position, report.broken
    assert report.last_position == position - 1
    result = run_cli(database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"at position {position}:" in result.stdout


async def test_swapped_rows_are_caught(db: asyncpg.Connection) -> None:
    """Two rows swapped (positions renumbered): the chain breaks at the first of them."""
    await seed_log(db, 50)
    await behind_the_triggers(
        db,
        "UPDATE ledger.events SET position = position + 1000000 WHERE position IN (10, 11)",
        "UPDATE ledger.events SET position = 1000021 - position WHERE position > 1000000",
    )
    assert (await verify_chain(db)).broken.position == 10  # type: ignore[union-attr]


async def test_forged_row_with_a_matching_hash_breaks_the_next_link(db: asyncpg.Connection) -> None:
    import msgspec

    from motionledger.domain.canonical import canonical_json, chain_hash

    await seed_log(db, 20)
    row = await db.fetchrow("SELECT event_id, body FROM ledger.events WHERE position = 7")
    previous = bytes(await db.fetchval("SELECT hash FROM ledger.events WHERE position = 6"))
    forged = {**msgspec.json.decode(row["body"]), "score": 1234.5}
    body = canonical_json(forged)
    digest = chain_hash(previous, 7, row["event_id"], body)
    async with db.transaction():
        await db.execute("ALTER TABLE ledger.events DISABLE TRIGGER events_append_only")
        await db.execute(
            "UPDATE ledger.events SET body = $1, hash = $2 WHERE position = 7", body, digest
        )
        await db.execute("ALTER TABLE ledger.events ENABLE ALWAYS TRIGGER events_append_only")
    report = await verify_chain(db)
    assert report.broken is not None
    assert report.broken.position == 8
    # verifying from 8 trusts the (forged) stored hash of 7 and so cannot see it: say so
    assert not (await verify_chain(db, from_position=8)).ok
    assert (await verify_chain(db, from_position=9)).ok
