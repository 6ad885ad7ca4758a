"""The SDK as a producer team gets it: slim imports, typed, the event Structs at hand, and
a reused eventId surfaced instead of silently dropped by the broker's duplicate window."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import asyncpg
import msgspec
import pytest
from nats.aio.client import __version__ as nats_client_version
from packaging.requirements import Requirement

import motionledger.producer as sdk
from motionledger.adapters.nats.tap import UnsupportedClient, tap_supported
from motionledger.domain import events
from motionledger.producer import (
    DirectorEvent,
    EventIdReused,
    Producer,
    SessionStarted,
    connect,
    make_event,
)
from motionledger.settings import Settings
from tests.support.ledger import running_ledger

from .test_delivery import wait_logged

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("prometheus_client", "asyncpg", "litestar", "uvicorn", "rich", "structlog")


def test_the_nats_py_under_test_is_in_the_pinned_range() -> None:
    """`make test-nats-floor` runs these tests again on the lowest nats-py allowed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [Requirement(r) for r in project["dependencies"] if r.startswith("nats-py")]
    running = version("nats-py")
    assert running == nats_client_version  # the one imported is the one measured
    assert pin.specifier.contains(running), (running, str(pin.specifier))
    floor = os.environ.get("MOTIONLEDGER_EXPECT_NATS_PY")
    if floor is not None:
        assert running == floor
        assert f">={floor}" in str(pin.specifier)


def test_the_event_structs_come_with_the_sdk() -> None:
    for cls in events.EVENT_TYPES:
        assert getattr(sdk, cls.__name__) is cls
    assert sdk.AnyEvent is events.AnyEvent


def test_importing_the_sdk_loads_no_server_package() -> None:
    probe = (
        "import sys, motionledger.producer; "
        f"print(sorted(m for m in {SERVER_ONLY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"
    assert (ROOT / "src" / "motionledger" / "py.typed").is_file()


def test_a_consumer_script_is_type_checked_against_the_sdk(tmp_path: Path) -> None:
    """mypy sees the SDK's types (py.typed): a wrong use is an error, a right one is not."""
    script = tmp_path / "consumer.py"
    script.write_text(
        textwrap.dedent(
            """
            from motionledger.producer import Ack, DirectorEvent, connect, make_event

            async def main() -> None:
                async with connect("nats://127.0.0.1:4222") as producer:
                    cut = make_event(DirectorEvent, session_id="S", timestamp_ms=1,
                                     event_type="cut")
                    ack: Ack = await producer.publish(cut)
                    seq: int = ack.seq
                    wrong: str = ack.seq
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "consumer.py:10" in errors[0], errors
    assert 'type "int"' in errors[0], errors


class _OldClient:
    """Stands for a nats-py whose internals the fast path does not know (checked at start)."""

    def __init__(self) -> None:
        self.stats = {"reconnects": 0}

    async def _process_msg(self, sid: int, subject: bytes) -> None:  # pragma: no cover
        pass


async def test_the_fast_path_refuses_a_nats_py_it_does_not_know() -> None:
    client = _OldClient()
    assert not tap_supported(client)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedClient, match="fast_path=False"):
        await Producer(client, fast_path=True).start()  # type: ignore[arg-type]


@pytest.mark.parametrize("fast_path", [False, True], ids=["public-api", "fast-path"])
async def test_a_reused_event_id_is_surfaced_not_dropped(
    settings: Settings, db: asyncpg.Connection, fast_path: bool
) -> None:
    url, root = settings.nats_url or "", settings.subject_root
    start = make_event(SessionStarted, session_id="S1", session_type="music_demo")
    cut = make_event(DirectorEvent, session_id="S1", timestamp_ms=5, event_type="cut")
    changed = msgspec.structs.replace(cut, timestamp_ms=6)  # same eventId, another body
    async with running_ledger(settings):
        async with connect(url, subject_root=root, fast_path=fast_path) as producer:
            await producer.publish(start)
            first = await producer.publish(cut)
            assert not first.duplicate
            again = await producer.publish(cut)  # the same body again: a harmless no-op
            assert (again.duplicate, again.unverified, again.seq) == (True, False, first.seq)
            with pytest.raises(EventIdReused, match=cut.event_id):
                await producer.publish(changed)
            assert producer.stats.failed == 1
        async with connect(url, subject_root=root, fast_path=fast_path) as other:
            # another process cannot know what body the broker holds: it says so
            ack = await other.publish(changed)
            assert (ack.duplicate, ack.unverified, ack.seq) == (True, True, first.seq)
            assert other.stats.unverified_duplicates == 1
        await wait_logged(db, 2)
    body = await db.fetchval("SELECT body FROM ledger.events WHERE event_id = $1", cut.event_id)
    assert msgspec.json.decode(body)["timestampMs"] == 5
