"""The `motionledger` command: one console script, a subcommand per job."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec

from . import logs
from .settings import Settings, SettingsError, load

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


async def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from .services.daemon import serve

    return await serve(settings)


async def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from .adapters.postgres.database import connect, migrate

    async with _database(settings) as dsn:
        conn = await connect(dsn)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


async def _schema(_: Settings, __: argparse.Namespace) -> int:
    from .domain.events import json_schema

    sys.stdout.write(msgspec.json.format(msgspec.json.encode(json_schema()), indent=2).decode())
    sys.stdout.write("\n")
    return 0


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from .services.dead_letters import list_dead_letters

    async with _database(settings) as dsn:
        return await list_dead_letters(
            dsn, as_json=args.json, reason=args.reason, session=args.session, limit=args.limit
        )


def _database(settings: Settings) -> Any:
    """The database a one-shot command talks to: the configured one, else the embedded one."""
    from .adapters.embedded import database_for_command

    return database_for_command(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionledger",
        description="Event-sourced production ledger for AI-directed multicam shoots.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML settings file (default: config/motionledger.toml when present); "
        "MOTIONLEDGER_* environment variables win over it",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="ingest, project and serve the query endpoint (Ctrl-C drains and exits 0)"
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(run=_migrate)

    schema = commands.add_parser("schema", help="print the JSON Schema of every event")
    schema.set_defaults(run=_schema)

    dead = commands.add_parser("dead-letters", help="list rejected events with their reasons")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    dead.add_argument("--reason", help="only this reason code, e.g. unknown_session")
    dead.add_argument("--session", help="only this sessionId")
    dead.add_argument("--limit", type=int, default=100, help="newest N (default 100; 0: all)")
    dead.set_defaults(run=_dead_letters)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load(args.config)
    except SettingsError as error:
        print(f"motionledger: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    run: Command = args.run
    try:
        return asyncio.run(run(settings, args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
