"""What the routes need from the services, as protocols, and how they get them: Litestar
dependency injection from providers the process wiring hands to `create_app`.

The services come up after the HTTP server (so /healthz answers while the database and
broker are still connecting); until then a provider answers None and a route 503.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from litestar.di import NamedDependency, Provide

from ..errors import Unavailable
from ..services.live import Follower
from ..services.positions import Answer, Attempt
from ..services.waiters import Outcome
from ..services.writes import Submission


@runtime_checkable
class ReadModel(Protocol):
    """The read tables, as JSON, with the log position each answer reflects:
    services.queries.Queries."""

    async def at_least(self, min_position: int | None, attempt: Attempt) -> Answer:
        """`attempt`'s answer once it reflects every event up to `min_position`."""
        ...

    async def session(self, session_id: str) -> Answer: ...
    async def active(self, session_type: str | None) -> Answer: ...
    async def timeline(self, session_id: str, start: int, end: int, limit: int) -> Answer: ...
    async def cameras(self, session_id: str) -> Answer: ...
    async def events(
        self,
        session_id: str,
        num_items: int,
        cursor: str | None,
        event_type: str | None,
        camera_id: str | None,
    ) -> Answer: ...
    async def stills(
        self, session_id: str, limit: int, camera_id: str | None, favorites_only: bool
    ) -> Answer: ...
    async def music(self, session_id: str, limit: int) -> Answer: ...
    async def assets(self, session_id: str, asset_type: str | None) -> Answer: ...
    async def camera_row(self, session_id: str, camera_id: str) -> bytes | None: ...
    async def still_row(self, still_id: str) -> bytes | None: ...


@runtime_checkable
class DerivedModel(Protocol):
    """The answers computed from the log: services.as_of.DerivedReads. Each answer is the
    JSON of its result and the log position it reflects."""

    async def at_least(
        self, min_position: int | None, attempt: Attempt, *, as_of: bool = False
    ) -> Answer:
        """`attempt`'s answer once it reflects every event up to `min_position`."""
        ...

    async def cut_log(
        self, session_id: str, from_ms: int, to_ms: int, limit: int, as_of: int | None = None
    ) -> tuple[bytes, int]: ...
    async def hero_windows(
        self, session_id: str, pad_ms: int, limit: int, from_ms: int, to_ms: int
    ) -> tuple[bytes, int]: ...
    async def alignment(
        self, session_id: str, from_ms: int, to_ms: int, limit: int
    ) -> tuple[bytes, int]: ...
    async def timeline_as_of(
        self, session_id: str, window: tuple[int, int], limit: int, as_of: int
    ) -> tuple[bytes, int]: ...


@runtime_checkable
class WriteModel(Protocol):
    """Publishing through the stream and waiting for the verdicts: services.writes."""

    async def submit(self, submissions: Sequence[Submission]) -> list[Outcome | None]: ...
    async def still_session(self, still_id: str) -> str | None: ...


@runtime_checkable
class LiveModel(Protocol):
    """A session's log as it grows: services.live.LiveHub."""

    async def follow(self, session_id: str, after: int) -> Follower:
        """A follower of the session from just after log position `after` (NotFound for a
        session the log never started; Unavailable past the bound on streams)."""
        ...


# What a handler declares to be given a service (by the parameter's name).
Reads = NamedDependency[ReadModel]
Derive = NamedDependency[DerivedModel]
Writes = NamedDependency[WriteModel]
Live = NamedDependency[LiveModel]

Source = Callable[[], object | None]


def _required(source: Source, what: str) -> Callable[[], object]:
    def provide() -> object:
        found = source()
        if found is None:
            raise Unavailable(f"the ledger is starting: {what} not up yet")
        return found

    return provide


def providers(
    reads: Callable[[], ReadModel | None],
    derived: Callable[[], DerivedModel | None],
    writes: Callable[[], WriteModel | None],
    live: Callable[[], LiveModel | None] = lambda: None,
) -> dict[str, Provide]:
    """The app's dependencies, answered by the given sources."""
    return {
        "reads": Provide(_required(reads, "database"), sync_to_thread=False),
        "derived": Provide(_required(derived, "database"), sync_to_thread=False),
        "writes": Provide(_required(writes, "database or broker"), sync_to_thread=False),
        "live": Provide(_required(live, "database"), sync_to_thread=False),
    }
