"""Logs: every line JSON in JSON mode, stdlib records included; the level setting. And the
producer-only install: server commands say in one line what to install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from motionledger import logs
from motionledger.settings import SettingsError, load

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


EMIT = """
    import logging, structlog
    from motionledger import logs
    logs.configure("json", {level!r})
    logging.getLogger("nats.aio.client").warning("reconnecting to %s", "nats-2")
    logging.getLogger("uvicorn.error").info("Started server process")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    logging.getLogger("motionledger.producer.client").info("resending", extra={{"in_flight": 3}})
    structlog.get_logger("motionledger.ingest").info("ingest_resumed", from_seq=7)
"""


def test_json_mode_makes_every_stdlib_record_one_json_line() -> None:
    result = _run(EMIT.format(level="info"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # each line is JSON
    by_event = {line["event"]: line for line in lines}
    nats = by_event["reconnecting to nats-2"]
    assert (nats["logger"], nats["level"]) == ("nats.aio.client", "warning")
    assert "timestamp" in nats
    assert "ZeroDivisionError" in by_event["Task exception was never retrieved"]["exception"]
    assert by_event["resending"]["in_flight"] == 3  # the SDK's extra fields come along
    assert by_event["ingest_resumed"]["from_seq"] == 7
    # a library's INFO chatter stays out unless the level is debug
    assert "Started server process" not in by_event
    assert len(lines) == 4


def test_debug_level_shows_the_libraries_too_and_warning_hides_info() -> None:
    debug = _run(EMIT.format(level="debug"))
    assert "Started server process" in {json.loads(x)["event"] for x in debug.stderr.splitlines()}
    quiet = _run(EMIT.format(level="WARNING"))
    events = {json.loads(x)["event"] for x in quiet.stderr.splitlines()}
    assert events == {"reconnecting to nats-2", "Task exception was never retrieved"}


def test_the_log_level_setting() -> None:
    assert load(environ={}).log_level == "info"
    assert load(environ={"MOTIONLEDGER_LOG_LEVEL": "DEBUG"}).log_level == "DEBUG"
    with pytest.raises(SettingsError, match="MOTIONLEDGER_LOG_LEVEL"):
        load(environ={"MOTIONLEDGER_LOG_LEVEL": "loud"})
    assert logs.level_number("Warning") == 30


# Stands for `pip install motionledger` without the server extra: those imports fail.
WITHOUT_SERVER = """
    import sys
    for name in ("asyncpg", "structlog", "prometheus_client", "litestar", "uvicorn", "rich"):
        sys.modules[name] = None  # importlib then finds nothing, like an absent package
    from motionledger.cli import main
    sys.exit(main({argv!r}))
"""


def test_server_commands_without_the_extra_say_what_to_install() -> None:
    result = _run(WITHOUT_SERVER.format(argv=["serve"]))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()  # one line, no traceback
    assert "pip install 'motionledger[server]'" in line
    assert "asyncpg is not installed" in line


def test_the_schema_command_works_without_the_extra() -> None:
    result = _run(WITHOUT_SERVER.format(argv=["schema"]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["title"] == "motionledger event"


def test_the_version_works_without_the_extra() -> None:
    result = _run(WITHOUT_SERVER.format(argv=["--version"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("motionledger ")
