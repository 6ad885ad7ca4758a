"""The `motionledger` command: one console script, a subcommand per job.

The CLI edge: argument parsing, and each command's output for a person (tables, progress
bars) or a machine (JSON lines), in the modules beside this one. It may import everything
below it, including the process wiring (`serve`); nothing imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from .. import __version__, logs
from ..errors import BrokerUnavailable, DatabaseUnavailable, LedgerError, Permanent, Unavailable
from ..settings import Settings, SettingsError, load

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


async def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from ..daemon import serve

    return await serve(settings)


async def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from ..adapters.postgres.database import connect, discard, migrate

    async with _database(settings) as dsn:
        conn = await connect(dsn)
        try:
            applied = await migrate(conn)
        finally:
            discard(conn)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


async def _schema(_: Settings, __: argparse.Namespace) -> int:
    from ..domain.events import json_schema

    sys.stdout.write(msgspec.json.format(msgspec.json.encode(json_schema()), indent=2).decode())
    sys.stdout.write("\n")
    return 0


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from .dead_letters import list_dead_letters

    async with _database(settings) as dsn:
        return await list_dead_letters(
            dsn, as_json=args.json, reason=args.reason, session=args.session, limit=args.limit
        )


async def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from .verify import run_verify

    async with _database(settings) as dsn:
        return await run_verify(
            dsn, from_position=args.from_position, as_json=args.json, quiet=args.quiet
        )


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from .simulate import run

    return await run(settings, args)


async def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from .rebuild import run_rebuild

    async with _database(settings) as dsn:
        return await run_rebuild(
            dsn, args.projections, chunk=args.chunk, quiet=args.quiet, as_json=args.json
        )


async def _follow(settings: Settings, args: argparse.Namespace) -> int:
    from .follow import run_follow

    return await run_follow(
        settings, args.session, after=args.after, as_json=args.json, url=args.url
    )


def _projection_name(name: str) -> str:
    from ..domain.projections import NAMES

    if name not in NAMES:
        raise argparse.ArgumentTypeError(f"unknown projection {name!r} (one of {', '.join(NAMES)})")
    return name


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from .replay import run_replay

    async with _database(settings) as dsn:
        return await run_replay(
            settings,
            dsn,
            ids=args.replay_ids or [],
            reason=args.replay_reason,
            wait_s=args.wait,
            as_json=args.json,
        )


def _database(settings: Settings) -> Any:
    """The database a one-shot command talks to: the configured one, else the embedded one."""
    from ..adapters.embedded import database_for_command

    return database_for_command(settings)


_CONFIG_HELP = (
    "TOML settings file (default: config/motionledger.toml when present); "
    "MOTIONLEDGER_* environment variables win over it"
)


def _with_config(default: Any) -> argparse.ArgumentParser:
    """A parent parser adding --config; each subcommand takes it too (SUPPRESS: one not
    given after the subcommand leaves the one before it; given in both places, the later
    one wins)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", type=Path, default=default, metavar="PATH", help=_CONFIG_HELP)
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionledger",
        description="Event-sourced production ledger for AI-directed multicam shoots.",
        parents=[_with_config(None)],
        epilog="Exit status: 0 done; 1 the check failed (verify found a break, replay a "
        "missing dead letter); 2 could not run (usage, configuration, database or broker "
        "unreachable). The long commands show progress on a terminal (stderr).",
    )
    parser.add_argument("--version", action="version", version=f"motionledger {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config = _with_config(argparse.SUPPRESS)

    def command(name: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[config], **options)

    serve = command(
        "serve", help="ingest, project and serve the query endpoint (Ctrl-C drains and exits 0)"
    )
    serve.set_defaults(run=_serve)

    migrate = command("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(run=_migrate)

    schema = command("schema", help="print the JSON Schema of every event")
    schema.set_defaults(run=_schema)

    dead = command("dead-letters", help="list rejected events with their reasons")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    dead.add_argument("--reason", help="only this reason code, e.g. unknown_session")
    dead.add_argument("--session", help="only this sessionId")
    dead.add_argument("--limit", type=int, default=100, help="newest N (default 100; 0: all)")
    dead.set_defaults(run=_dead_letters)
    actions = dead.add_subparsers(dest="dead_letters_action", metavar="ACTION")
    replay = actions.add_parser(
        "replay",
        parents=[config],
        help="re-judge chosen dead letters through the stream and judge, each exactly once",
        description="Publish chosen dead letters again on their subjects (after the cause is "
        "fixed), so the normal judge decides again. Each dead letter is replayed at most once; "
        "needs a running `serve` to judge them.",
    )
    replay.add_argument(
        "--id",
        dest="replay_ids",
        type=int,
        action="append",
        metavar="N",
        help="dead letter id (repeatable)",
    )
    replay.add_argument(
        "--reason",
        dest="replay_reason",
        metavar="R",
        help="every dead letter with this reason not replayed yet, e.g. unknown_session",
    )
    replay.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the verdicts (default 10; 0: do not wait)",
    )
    replay.add_argument("--json", action="store_true", help="one JSON object per line")
    replay.set_defaults(run=_replay)

    from ..domain.projections import NAMES

    rebuild = command(
        "rebuild",
        help="rebuild read tables from the log while serve keeps running; returns once live",
        description="Rebuild read tables from the log into shadow tables, catch up with the "
        "head, and swap them in with one short transaction; reads keep answering throughout.",
    )
    rebuild.add_argument(
        "projections",
        nargs="*",
        type=_projection_name,
        metavar="PROJECTION",
        help=f"table(s) to rebuild: {', '.join(NAMES)} (default: all)",
    )
    rebuild.add_argument(
        "--chunk", type=int, default=50_000, help="log positions per transaction (default 50000)"
    )
    rebuild.add_argument("--quiet", action="store_true", help="no progress bar")
    rebuild.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: names, position, rows (per table), seconds, rate",
    )
    rebuild.set_defaults(run=_rebuild)

    verify = command(
        "verify",
        help="recompute the log's hash chain; exits 1 naming the first bad position",
    )
    verify.add_argument(
        "--from",
        dest="from_position",
        type=int,
        default=1,
        metavar="POSITION",
        help="start here, trusting the stored hash of POSITION-1 (default: 1, the whole log)",
    )
    verify.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: ok, fromPosition, lastPosition, checked, headHash (hex), "
        "seconds, rate, broken ({position, problem} or null)",
    )
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(run=_verify)

    sim = command(
        "simulate",
        help="publish a realistic generated shoot to a running ledger (deterministic per seed)",
        description="Publish a generated shoot through the producer SDK to the configured "
        "broker (else the embedded one `serve` runs): sessions with cameras, cut/hold/release "
        "decisions, bar fires and phrase boundaries at a tempo, music moments, hero poses "
        "followed by still candidates (some favourited later), camera changes, assets at the "
        "end. Progress bar while it runs, a summary of what was sent at the end.",
    )
    sim.add_argument("--sessions", type=int, default=1, help="sessions shot at once (default 1)")
    sim.add_argument("--cameras", type=int, default=8, help="cameras per session (default 8)")
    sim.add_argument("--duration", type=float, default=60.0, help="shoot seconds (default 60)")
    sim.add_argument(
        "--rate", type=float, default=30.0, help="director decisions/s per session (default 30)"
    )
    sim.add_argument("--tempo", type=float, default=120.0, help="music bpm (default 120)")
    sim.add_argument("--seed", type=int, help="same seed and --start-ms: the same shoot")
    sim.add_argument("--start-ms", type=int, help="shoot clock start, epoch ms (default: now)")
    sim.add_argument(
        "--speed", type=float, default=1.0, help="clock multiplier; 0 = as fast as possible"
    )
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(run=_simulate)

    # -- follow (the live session stream) --
    fol = command(
        "follow",
        help="print a session's events as they happen (the live stream), one line each",
        description="Follow a session through the query endpoint's live stream: its events "
        "so far, then each new one as it is committed; resumes by itself after a dropped "
        "connection. Uses MOTIONLEDGER_HTTP_HOST/PORT (or --url) and MOTIONLEDGER_API_TOKEN.",
    )
    fol.add_argument("session", metavar="SESSION", help="the sessionId to follow")
    fol.add_argument("--after", type=int, metavar="N", help="only events after log position N")
    fol.add_argument("--json", action="store_true", help="one JSON object per line")
    fol.add_argument("--url", help="the query endpoint (default: from the settings)")
    fol.set_defaults(run=_follow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..extras import missing_for  # a producer-only install: say what to install

    if (missing := missing_for(args.command)) is not None:
        print(f"motionledger: {missing}", file=sys.stderr)
        return 2
    try:
        settings = load(args.config)
    except SettingsError as error:
        print(f"motionledger: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    run: Command = args.run
    try:
        return asyncio.run(run(settings, args))
    except KeyboardInterrupt:
        return 130
    except (Unavailable, Permanent) as error:  # it cannot run here now: one line, no traceback
        print(f"motionledger {_name(args)}: {_cannot_run(error, settings)}", file=sys.stderr)
        return 2
    except LedgerError as error:
        print(f"motionledger {_name(args)}: {error}", file=sys.stderr)
        return 1


def _name(args: argparse.Namespace) -> str:
    action = getattr(args, "dead_letters_action", None)
    return f"{args.command} {action}" if action else str(args.command)


def _cannot_run(error: LedgerError, settings: Settings) -> str:
    """The error in one line, naming what could not be reached (credentials left out)."""
    detail = str(error) or type(error).__name__
    if isinstance(error, DatabaseUnavailable):
        where = _address(settings.database_url) if settings.database_url else "embedded"
        return f"database unreachable ({where}): {detail}"
    if isinstance(error, BrokerUnavailable):
        urls = settings.nats_servers if settings.nats_url else []
        where = ", ".join(_address(url) for url in urls) or "embedded"
        return f"broker unreachable ({where}): {detail}"
    if isinstance(error, Unavailable):
        return f"unavailable: {detail}"
    return detail


def _address(url: str) -> str:
    """host:port of a URL, without user or password."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host", "")
    return f"{host}:{port}" if port else host or "?"


if __name__ == "__main__":
    raise SystemExit(main())
