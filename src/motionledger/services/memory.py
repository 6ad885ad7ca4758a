"""The judge's bounded memory: recently needed facts, so most batches need no look-up.

Only positive facts are kept ("session S was started", "event E is in the log"); the log
is append-only, so they never turn false. A miss is looked up in Postgres, whose indexes
are the complete truth. Memory therefore stays flat however long the log grows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from ..domain.judge import FactKeys, Knowledge

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    __slots__ = ("_capacity", "_items")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def put_all(self, keys: Iterable[K], value: V) -> None:
        for key in keys:
            self.put(key, value)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class JudgeMemory:
    """Capacity must stay well above one batch's facts: a batch's optimistic facts (learned
    before its commit) must survive until the next batch is judged."""

    def __init__(self, facts: int = 50_000, event_ids: int = 100_000) -> None:
        self.sessions: Lru[str, bool] = Lru(facts)
        self.cameras: Lru[tuple[str, str], bool] = Lru(facts)
        self.stills: Lru[str, str] = Lru(facts)
        self.assets: Lru[str, bool] = Lru(facts)
        self.event_ids: Lru[str, bool] = Lru(event_ids)

    def split(self, keys: FactKeys, event_ids: Iterable[str]) -> tuple[Knowledge, FactKeys]:
        """What memory answers for `keys`, and the keys it cannot answer."""
        known = Knowledge(event_ids={e for e in event_ids if e in self.event_ids})
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
        self.event_ids.put_all(known.event_ids, True)

    def clear(self) -> None:
        for lru in (self.sessions, self.cameras, self.stills, self.assets, self.event_ids):
            lru.clear()
