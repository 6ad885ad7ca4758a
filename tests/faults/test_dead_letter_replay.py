"""`motionledger dead-letters replay`: events rejected for a cause since fixed are re-judged
through the stream and the judge, each dead letter at most once, never logged twice."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import asyncpg
import msgspec
from nats.aio.client import Client

from motionledger.adapters.postgres.database import connect
from motionledger.cli.replay import run_replay
from motionledger.services.replay import REPLAY_HEADER, msg_id, replay, verdicts
from motionledger.services.verify import verify_chain
from motionledger.settings import Settings
from tests.support import events as ev
from tests.support.ledger import running_ledger, settings_env


async def wait_seq(db: asyncpg.Connection, seq: int) -> None:
    for _ in range(1000):
        if (await db.fetchval("SELECT stream_seq FROM ledger.ingest_state") or 0) >= seq:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(seq)


async def letters(db: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await db.fetch("SELECT id, reason, event_id, headers, raw FROM ledger.dead_letters")
    return {row["id"]: row for row in rows}


async def logged(db: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await db.fetch("SELECT event_id FROM ledger.events ORDER BY position")]


async def test_replay_rejudges_each_dead_letter_exactly_once(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    early = [ev.director("S1") for _ in range(3)]  # before their session was started
    orphan = ev.camera_state("S1", "c9", isActive=False)  # before its camera
    update = ev.still_updated("S1", "st1", isFavorite=True)  # before its still
    async with running_ledger(settings):
        await ev.publish_events(js, root, [*early, orphan, update])
        last = await ev.publish_raw(js, f"{root}.director.S1", b"{not json")
        await wait_seq(db, last)
        first = await letters(db)
        assert [r["reason"] for r in first.values()] == [
            "unknown_session",
            "unknown_session",
            "unknown_session",
            "unknown_session",
            "unknown_session",
            "invalid_json",
        ]
        ids = sorted(first)

        # the cause is fixed: the session, its camera and the still now exist; the producer
        # also re-sent the still update itself (same eventId): an eventId is judged once, so
        # the copy gets the first copy's rejection (kept, naming the dead letter it repeats)
        fix = [
            ev.session_started("S1"),
            ev.camera_upserted("S1", "c9"),
            ev.still_created("S1", "st1"),
        ]
        resent = dict(update)
        seqs = await ev.publish_events(js, root, fix)
        seqs.append(
            await ev.publish_raw(
                js, ev.subject_of(root, resent), msgspec.json.encode(resent), msg_id="resend"
            )
        )
        await wait_seq(db, seqs[-1])
        repeat = await db.fetchrow(
            "SELECT reason, repeat_of FROM ledger.dead_letters WHERE stream_seq = $1", seqs[-1]
        )
        assert (repeat["reason"], repeat["repeat_of"]) == ("unknown_session", ids[4])
        assert update["eventId"] not in await logged(db)

        # by reason: the three early director events, the camera change and the update (the
        # repeat is not chosen: replaying the dead letter it repeats judges the eventId)
        out = io.StringIO()
        code = await run_replay(
            settings,
            settings.database_url or "",
            ids=[],
            reason="unknown_session",
            wait_s=20,
            as_json=False,
            out=out,
        )
        assert code == 0, out.getvalue()
        text = out.getvalue()
        assert text.count("logged at position") == 5, text
        assert "duplicate" not in text
        assert await logged(db) == [
            *(e["eventId"] for e in fix),
            *(e["eventId"] for e in early),
            orphan["eventId"],
            update["eventId"],
        ]

        # again by reason: nothing left to replay; by id: refused, already replayed
        out = io.StringIO()
        assert (
            await run_replay(
                settings,
                settings.database_url or "",
                ids=[],
                reason="unknown_session",
                wait_s=5,
                as_json=False,
                out=out,
            )
            == 0
        )
        assert out.getvalue().strip() == "no dead letters matched"
        out = io.StringIO()
        await run_replay(
            settings,
            settings.database_url or "",
            ids=ids[:2],
            reason=None,
            wait_s=5,
            as_json=True,
            out=out,
        )
        again = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
        assert [a["verdict"] for a in again] == ["already_replayed", "already_replayed"]

        # still bad: rejected again, the new dead letter points at the old one
        out = io.StringIO()
        await run_replay(
            settings,
            settings.database_url or "",
            ids=[ids[5]],
            reason=None,
            wait_s=20,
            as_json=True,
            out=out,
        )
        (result,) = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
        assert result["verdict"] == "rejected"
        assert result["reason"] == "invalid_json"
        new = (await letters(db))[result["newDeadLetterId"]]
        assert bytes(new["raw"]) == b"{not json"
        assert msgspec.json.decode(new["headers"])[REPLAY_HEADER] == [str(ids[5])]

    assert len(await logged(db)) == 8
    assert (await verify_chain(db)).ok
    assert await db.fetchval("SELECT count(*) FROM ledger.replays") == 6


async def test_concurrent_and_interrupted_replays_publish_once(
    settings: Settings, db: asyncpg.Connection, nc: Client
) -> None:
    js = nc.jetstream()
    root = settings.subject_root
    orphans = [ev.director("S2"), ev.director("S2")]
    async with running_ledger(settings):
        await ev.publish_events(js, root, orphans)
        last = (await ev.publish_events(js, root, [ev.session_started("S2")]))[-1]
        await wait_seq(db, last)
        (a, b) = sorted(await letters(db))

        # two operators replay the same dead letter at the same moment: one publish
        conns = [await connect(settings.database_url or "") for _ in range(2)]
        results = await asyncio.gather(*(replay(c, js, settings, ids=[a]) for c in conns))
        verdict_names = sorted(r[0].verdict for r in results)
        assert verdict_names == ["already_replayed", "pending"]

        # a replay that published and died before recording it: run again, the broker's
        # duplicate window drops the second copy and the record gets the first one's place
        row = await db.fetchrow(
            "SELECT subject, raw, stream_epoch, stream_seq FROM ledger.dead_letters WHERE id = $1",
            b,
        )
        first = await js.publish(
            row["subject"],
            bytes(row["raw"]),
            headers={
                "Nats-Msg-Id": msg_id(row["stream_epoch"], row["stream_seq"]),
                REPLAY_HEADER: str(b),
            },
        )
        (done,) = await replay(conns[0], js, settings, ids=[b])
        assert done.stream_seq == first.seq
        (done,) = await verdicts(conns[0], settings, [done], wait_s=20)
        assert done.verdict == "logged"
        for conn in conns:
            await conn.close()
        await wait_seq(db, first.seq)
    ids = await logged(db)
    assert sorted(ids[1:]) == sorted(e["eventId"] for e in orphans)
    assert len(ids) == 3


async def test_the_command_line(settings: Settings, db: asyncpg.Connection, nc: Client) -> None:
    js = nc.jetstream()
    async with running_ledger(settings):
        orphan = ev.director("S3")
        await ev.publish_events(js, settings.subject_root, [orphan])
        seq = (await ev.publish_events(js, settings.subject_root, [ev.session_started("S3")]))[-1]
        await wait_seq(db, seq)
        (letter,) = await letters(db)
        env = settings_env(settings)
        command = [sys.executable, "-m", "motionledger", "dead-letters", "replay"]
        ok = await asyncio.to_thread(
            subprocess.run,
            [*command, "--id", str(letter)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert f"dead letter {letter}: re-judged and logged at position 2" in ok.stdout
        missing = await asyncio.to_thread(
            subprocess.run,
            [*command, "--id", "999999"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert missing.returncode == 1
        assert "no such dead letter" in missing.stdout
        usage = await asyncio.to_thread(
            subprocess.run,
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert usage.returncode == 2
    ids = await logged(db)
    assert len(ids) == 2
    assert ids[1] == orphan["eventId"]
