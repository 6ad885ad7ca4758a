"""motionledger: an event-sourced production ledger for AI-directed multicam shoots.

`pip install motionledger` is the producer SDK and the event types
(`motionledger.producer`); the daemon and its commands come with `motionledger[server]`,
the embedded NATS and PostgreSQL for a bare machine with `motionledger[embedded]`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("motionledger")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"
