"""What asyncpg raises, said in the ledger's terms (see motionledger.errors).

In the manner of eventsourcing's postgres recorder (`except IntegrityError as e: raise
RecordConflictError(e)`): every public function of this package lets only ledger errors out.
A constraint name decides what a refusal means, here and nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import asyncpg
from asyncpg.exceptions._base import DataError as _CLIENT_DATA_ERROR

from ...errors import (
    Contended,
    DatabaseUnavailable,
    DuplicateEventId,
    JudgedBefore,
    LedgerError,
    OutOfStep,
    Permanent,
    StaleFact,
    StorageRefused,
    translating_with,
)

# The connection is gone, or the server cannot take it now (as opposed to "this is refused").
CONNECTION_LOST: Final = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # 57xxx: admin shutdown, cannot connect now
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    OSError,
    TimeoutError,
)
# Another writer wrote where this one meant to: positions, stream sequences, the checkpoint.
_OUT_OF_STEP: Final = frozenset(
    {"events_pkey", "events_stream_seq_key", "dead_letters_stream_seq_key"}
)
# The creation rules the database holds beside the judge (see migration 0001).
_CREATIONS: Final = frozenset(
    {"events_session_started", "events_still_created", "events_asset_created"}
)
_DUPLICATE_EVENT_ID: Final = "events_event_id_key"
_CHECKPOINT_MOVED: Final = "MLCKP"  # raised by ledger.advance_checkpoint
_JUDGED_BEFORE: Final = "MLJDG"  # raised by ledger.assert_unjudged
# What a refusal means is decided by its SQLSTATE class: only the data's own fault (data
# exceptions, integrity constraints, program limits such as a row too big) is a refusal of
# the data — anything else (a full disk, no memory, a read-only standby after a failover, an
# I/O or internal error) is the database being unable to take it now, and must be retried,
# never dead-lettered: a message refused for the server's trouble would be lost for good.
_DATA_CLASSES: Final = frozenset({"22", "23", "54"})
_CONTENDED_STATES: Final = frozenset({"55P03"})  # lock_not_available
_CONTENDED_CLASSES: Final = frozenset({"40"})  # deadlock, serialization failure
# Nothing a retry changes: privileges, a missing object, a wrong password or database name.
_PERMANENT_CLASSES: Final = frozenset({"28", "3D", "42"})


def said(error: BaseException) -> str:
    """An error as one line for logs and dead letters."""
    return f"{type(error).__name__}: {error}"[:1000]


def translate(error: BaseException) -> LedgerError | None:
    """The ledger's name for a driver error, or None when it is not one of the driver's."""
    if isinstance(error, LedgerError):
        return error
    if isinstance(error, _CLIENT_DATA_ERROR):  # the driver's own: a value it cannot encode
        return StorageRefused(said(error))
    if isinstance(error, CONNECTION_LOST):
        return DatabaseUnavailable(str(error) or type(error).__name__)
    if not isinstance(error, asyncpg.PostgresError):
        return None
    sqlstate = str(getattr(error, "sqlstate", None) or "")
    if sqlstate == _CHECKPOINT_MOVED:
        return OutOfStep(str(error))
    if sqlstate == _JUDGED_BEFORE:
        return JudgedBefore(said(error))
    kind = sqlstate[:2]
    if sqlstate in _CONTENDED_STATES or kind in _CONTENDED_CLASSES:
        return Contended(said(error))
    if kind in _PERMANENT_CLASSES:
        return Permanent(said(error))
    if kind not in _DATA_CLASSES:  # the server's trouble, not the data's: try again later
        return DatabaseUnavailable(said(error))
    constraint = getattr(error, "constraint_name", None)
    if constraint == _DUPLICATE_EVENT_ID:
        return DuplicateEventId(said(error), constraint=constraint)
    if constraint in _OUT_OF_STEP:
        return OutOfStep(f"the log moved under this writer: {error}")
    if constraint in _CREATIONS:
        return StaleFact(said(error), constraint=constraint)
    return StorageRefused(said(error), constraint=constraint)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Driver errors raised inside become ledger errors (with the driver's as the cause)."""
    try:
        yield
    except Exception as error:
        ledger_error = translate(error)
        if ledger_error is None or ledger_error is error:
            raise
        raise ledger_error from error


# Decorates an adapter coroutine so only ledger errors leave it.
translating = translating_with(translated)
