"""The judge's bounded memory: recently needed facts, so most batches need no look-up.

Only positive facts are kept ("session S was started", "event E is in the log"); the log
is append-only, so they never turn false. A miss is looked up in Postgres, whose indexes
are the complete truth. Memory therefore stays flat however long the log grows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from ..domain.judge import FactKeys, Knowledge, Prior

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A bounded map of recently used keys, in two generations.

    New and re-used keys go to the young generation; when it fills, it becomes the old one
    and the previous old one is dropped. A hit in the old generation is promoted. Close to
    LRU, but every operation is a dict operation in C — this sits on the ingest hot path.
    """

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, capacity: int) -> None:
        self._half = max(1, capacity // 2)
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def _rotate_if_full(self) -> None:
        if len(self._young) >= self._half:
            self._old, self._young = self._young, {}

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        if value is None:
            value = self._old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V) -> None:
        self._young[key] = value
        self._rotate_if_full()

    def put_all(self, keys: Iterable[K], value: V) -> None:
        self._young.update(dict.fromkeys(keys, value))
        self._rotate_if_full()

    def discard_all(self, keys: Iterable[K]) -> None:
        """Forget these keys (a fact about them changed: only the log could say so)."""
        for key in keys:
            self._young.pop(key, None)
            self._old.pop(key, None)

    def present(self, keys: set[K]) -> set[K]:
        """Which of `keys` are remembered (without promoting them)."""
        return (keys & self._young.keys()) | (keys & self._old.keys())

    def clear(self) -> None:
        self._young.clear()
        self._old.clear()

    def __len__(self) -> int:
        return len(self._young.keys() | self._old.keys())


class JudgeMemory:
    """Each generation must hold well over one batch of facts: a batch's optimistic facts
    (learned before its commit) must survive until the next batch has been judged.

    `event_ids` are the eventIds judged lately (logged or rejected): one coming again is
    looked up (its Prior: the body and verdict it had) before it is judged. `priors` keeps
    the Priors looked up lately, so a batch judged again after a refusal needs no second
    look-up. A miss in `event_ids` is not a promise: the database holds every verdict, and
    refuses a commit that would give an eventId a second one (see services.refusals)."""

    def __init__(self, facts: int = 50_000, event_ids: int = 50_000, priors: int = 10_000) -> None:
        self.sessions: Recent[str, bool] = Recent(facts)
        self.cameras: Recent[tuple[str, str], bool] = Recent(facts)
        self.stills: Recent[str, str] = Recent(facts)
        self.assets: Recent[str, bool] = Recent(facts)
        self.event_ids: Recent[str, bool] = Recent(event_ids)
        self.priors: Recent[str, Prior] = Recent(priors)

    def split(self, keys: FactKeys) -> tuple[Knowledge, FactKeys]:
        """What memory answers for `keys`, and the keys it cannot answer."""
        known = Knowledge()
        missing = FactKeys()
        for session in keys.sessions:
            (known.sessions if session in self.sessions else missing.sessions).add(session)
        for camera in keys.cameras:
            (known.cameras if camera in self.cameras else missing.cameras).add(camera)
        for still in keys.stills:
            owner = self.stills.get(still)
            if owner is None:
                missing.stills.add(still)
            else:
                known.stills[still] = owner
        for asset in keys.assets:
            (known.assets if asset in self.assets else missing.assets).add(asset)
        return known, missing

    def absorb(self, known: Knowledge) -> None:
        self.sessions.put_all(known.sessions, True)
        self.cameras.put_all(known.cameras, True)
        for still, session in known.stills.items():
            self.stills.put(still, session)
        self.assets.put_all(known.assets, True)
        self.event_ids.put_all(known.logged, True)
        self.event_ids.put_all(known.priors, True)

    def clear(self) -> None:
        for memory in (
            self.sessions,
            self.cameras,
            self.stills,
            self.assets,
            self.event_ids,
            self.priors,
        ):
            memory.clear()
