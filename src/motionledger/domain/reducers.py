"""The in-memory twin of the projectors: what each logged event does to plain dict rows.

Pure and derived from `domain.projections`: the same declaration drives the projectors'
SQL, and one contract suite runs the same logs through both and compares the rows. Rows
are keyed by `id`; values are what Postgres holds (epoch-ms ints, floats, bools, str, and
decoded JSON for jsonb columns).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from .events import AnyEvent, Event
from .projections import (
    CREATED_AT,
    FED_BY,
    ID,
    POSITION,
    PROJECTIONS,
    UPDATED_AT,
    Projection,
    Role,
)

Row = dict[str, Any]
Table = dict[str, Row]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class ReducerError(ValueError):
    """An event the judge would never have accepted (a second creation, an unknown row)."""


def recorded_ms(recorded_at: datetime) -> int:
    """Epoch milliseconds of a recorded time, rounded down (as the SQL side does)."""
    delta = recorded_at - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros // 1000


@dataclass(frozen=True, slots=True)
class Logged:
    """An event as the log holds it: its position and recorded time."""

    position: int
    recorded_at: datetime
    event: AnyEvent


def _plain(value: Any) -> Any:
    # jsonb keeps JSON, not Python objects: store what a decode of the stored JSON gives
    if isinstance(value, dict | list):
        return msgspec.json.decode(msgspec.json.encode(value))
    return value


def apply(
    projection: Projection, table: Table, event: Event, position: int, recorded_at_ms: int
) -> None:
    """Fold one event into `table` (mutated in place)."""
    role = projection.roles.get(type(event))
    if role is None:
        return
    row_id = projection.row_id(event)
    sources = projection.sources[type(event)]
    row = table.get(row_id)
    if row is None:
        if role is Role.PATCH:
            raise ReducerError(f"{projection.name}: {type(event).__name__} for unknown {row_id}")
        row = {column.name: None for column in projection.all_columns}
        for name, source in sources.items():
            row[name] = _plain(source.value(event, recorded_at_ms))
        row.update(
            {
                ID: row_id,
                CREATED_AT: recorded_at_ms,
                UPDATED_AT: recorded_at_ms,
                POSITION: position,
            }
        )
        table[row_id] = row
        return
    if role is Role.CREATE:
        raise ReducerError(f"{projection.name}: a second creation of {row_id}")
    for column in projection.columns:
        patch = sources.get(column.name)
        if patch is None or column.fixed:
            continue
        value = patch.value(event, recorded_at_ms)
        if value is not None:  # absent or null leaves the stored value as it is
            row[column.name] = _plain(value)
    row[UPDATED_AT] = recorded_at_ms


@dataclass
class Twin:
    """All six read tables in memory, fed with logged events in position order."""

    projections: tuple[Projection, ...] = PROJECTIONS
    tables: dict[str, Table] = field(default_factory=dict)
    position: int = 0

    def __post_init__(self) -> None:
        for projection in self.projections:
            self.tables.setdefault(projection.name, {})

    def feed(self, logged: Iterable[Logged]) -> Twin:
        names = {p.name for p in self.projections}
        for item in logged:
            if item.position <= self.position:
                raise ReducerError(f"position {item.position} after {self.position}")
            self.position = item.position
            projection = FED_BY[type(item.event)]
            if projection.name in names:
                apply(
                    projection,
                    self.tables[projection.name],
                    item.event,
                    item.position,
                    recorded_ms(item.recorded_at),
                )
        return self

    def rows(self, name: str) -> list[Row]:
        """A table's rows ordered by id (as the tests read Postgres)."""
        table = self.tables[name]
        return [table[key] for key in sorted(table)]
