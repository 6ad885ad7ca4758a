"""The ledger's exceptions: one family with one root, so every edge can answer them.

Adapters translate what drivers raise (asyncpg, nats-py) into these, the services raise and
handle them in domain terms, and the edges map them to answers (an HTTP status, an exit
status). The families say what a caller can do about them:

- `Unavailable`: the broker or the database cannot serve now; try again later (503, retry).
- `OutOfStep`: the log or a checkpoint moved under a writer that believed it was the only
  one; this writer must stop writing and start over from what is committed.
- `StorageRefused`: PostgreSQL refused data the ledger handed it; the cause says which rule.
- `InvalidRequest` / `NotFound` / `Refused`: the caller asked for something wrong or unknown.
- `Permanent`: retrying cannot help (a changed migration, missing privileges, a busy resource
  that another run owns); say so and stop.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar


class LedgerError(Exception):
    """The root of every error the ledger raises on purpose."""


# -- dependencies ---------------------------------------------------------------------------
class Unavailable(LedgerError):
    """A dependency cannot serve now; the same call may work later."""


class DatabaseUnavailable(Unavailable):
    """PostgreSQL is unreachable, shutting down, or dropped the connection."""


class BrokerUnavailable(Unavailable):
    """NATS is unreachable or did not answer in time."""


class Contended(Unavailable):
    """A lock was not granted in time, or transactions deadlocked: try again."""


class NotCaughtUp(Unavailable):
    """A read needs the read tables to reach a log position they did not reach in time."""

    def __init__(self, position: int, checkpoint: int) -> None:
        super().__init__(
            f"the read tables stand at position {checkpoint}; this read needs {position}"
        )
        self.position, self.checkpoint = position, checkpoint


class PullBroken(BrokerUnavailable):
    """The pull can no longer be trusted to be complete and in order: start over."""


# -- writers ---------------------------------------------------------------------------------
class OutOfStep(LedgerError):
    """The log or a checkpoint moved under this writer: it is no longer the one writer."""


# -- data PostgreSQL refused -------------------------------------------------------------------
class StorageRefused(LedgerError):
    """PostgreSQL refused rows the ledger handed it (a constraint, a value it cannot hold)."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class DuplicateEventId(StorageRefused):
    """An eventId is in the log already (logged beyond the judge's memory)."""


class JudgedBefore(StorageRefused):
    """An eventId the batch would log was rejected before (beyond the judge's memory)."""


class StaleFact(StorageRefused):
    """A creation the judge believed new is in the log already: its facts were stale."""


# -- requests ------------------------------------------------------------------------------------
class NotFound(LedgerError):
    """A session or an id the ledger does not know."""


class InvalidRequest(LedgerError, ValueError):
    """A parameter the ledger cannot take (a cursor it did not make, an unknown name)."""


class BadCursor(InvalidRequest):
    """Not a cursor this endpoint made."""


class UnknownProjection(InvalidRequest, KeyError):
    """A projection (read table) name the ledger does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Refused(LedgerError):
    """An event would be rejected for what it is, so nothing was published.

    `code` is the reason code a producer would find on the dead letter."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Conflict(LedgerError):
    """A write that names an eventId judged before, asking for another event: nothing was
    written. `code` is the reason code (`event_id_reused`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# -- nothing to retry --------------------------------------------------------------------------
class Permanent(LedgerError):
    """Retrying cannot help; an operator must act."""


class MigrationError(Permanent):
    """The schema cannot be brought up to date (a changed migration, missing privileges)."""


class EmbeddedError(Permanent, RuntimeError):
    """An embedded server could not be started; the message says why and what to do."""


class RebuildBusy(Permanent):
    """Another rebuild holds the rebuild lock of this database."""


class SettingsError(Permanent, ValueError):
    """A setting has a bad value or an unknown name; the message names it."""


P = ParamSpec("P")
T = TypeVar("T")


def translating_with(
    translated: Callable[[], contextlib.AbstractContextManager[None]],
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """A decorator for an adapter's coroutines: inside them, `translated()` turns driver
    errors into ledger errors, so only those leave the adapter."""

    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with translated():
                return await function(*args, **kwargs)

        return wrapper

    return decorate
