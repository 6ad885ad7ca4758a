"""What nats-py raises, said in the ledger's terms: every failure to reach or hear from the
broker is `BrokerUnavailable` (the caller starts over from what Postgres has committed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from nats.errors import Error as NatsError

from ...errors import BrokerUnavailable, LedgerError, translating_with

# nats-py's own errors (its TimeoutError is an OSError too), and the socket's
BROKER_FAILURES: Final = (NatsError, OSError, TimeoutError)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except LedgerError:
        raise
    except BROKER_FAILURES as error:
        raise BrokerUnavailable(str(error) or type(error).__name__) from error


# Decorates an adapter coroutine so only ledger errors leave it.
translating = translating_with(translated)
