"""`motionledger dead-letters replay`: chosen dead letters judged again, and what came of it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

import msgspec

from ..adapters.embedded import broker_for_command
from ..adapters.nats import broker
from ..adapters.postgres.database import connect, discard
from ..errors import InvalidRequest
from ..services.replay import Replayed, replay, verdicts
from ..settings import Settings

# tries of each broker URL beyond the first (0.5 s apart) before saying it is unreachable
BROKER_ATTEMPTS: Final = 3
_WORDS: Final = {
    "logged": "re-judged and logged at position {position}",
    "rejected": "re-judged and rejected again: {reason} (dead letter {new_dead_letter_id})",
    "duplicate": "re-judged: a duplicate, its eventId is already in the log",
    "pending": "published at stream sequence {stream_seq}; not judged yet (is serve running?)",
    "already_replayed": "already replayed at {replayed_at} (stream sequence {stream_seq}); "
    "not again",
    "not_found": "no such dead letter",
}


def describe(item: Replayed) -> str:
    fields: dict[str, Any] = msgspec.structs.asdict(item)
    return f"dead letter {item.dead_letter_id}: " + _WORDS[item.verdict].format(**fields)


def _with_broker(settings: Settings) -> Settings:
    url = broker_for_command(settings)
    if url is None:
        raise InvalidRequest(
            "no broker configured and no embedded one found: set MOTIONLEDGER_NATS_URL "
            "or start `motionledger serve`"
        )
    return settings.replace(nats_url=url)


async def run_replay(
    settings: Settings,
    dsn: str,
    *,
    ids: Sequence[int],
    reason: str | None,
    wait_s: float,
    as_json: bool,
    out: TextIO | None = None,
) -> int:
    """The command: 0 when every chosen dead letter was found, 1 otherwise, 2 on misuse."""
    out = out or sys.stdout
    if not ids and reason is None:
        print("motionledger dead-letters replay: give --id N or --reason R", file=sys.stderr)
        return 2
    conn = await connect(dsn)
    try:
        client = await broker.connect(
            _with_broker(settings), name="motionledger-replay", attempts=BROKER_ATTEMPTS
        )
        try:
            done = await replay(conn, client.jetstream(), settings, ids=ids, reason=reason)
            done = await verdicts(conn, settings, done, wait_s)
        finally:
            await client.close()
    finally:
        discard(conn)
    if as_json:
        encoder = msgspec.json.Encoder()
        for item in done:
            out.write(encoder.encode(item).decode() + "\n")
    else:
        for item in done:
            print(describe(item), file=out)
        if not done:
            print("no dead letters matched", file=out)
    return 1 if any(item.verdict == "not_found" for item in done) else 0
