"""The projectors' set-based SQL, rendered from the projection declarations.

One statement applies a range of log positions to any set of read tables (the live ones or
a rebuild's shadows): the range is scanned once (`batch`), each table takes its event types
from it, and every table whose rows change after creation folds all of a batch's events per
row first — in log order, "last non-null value wins" for a patched column, the first
creator's time and position for the row's birth — so the result never depends on where a
batch starts or ends. That is what the contract suite checks against `domain.reducers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...domain.events import TAG_OF
from ...domain.projections import (
    CREATED_AT,
    ID,
    POSITION,
    RECORDED,
    UPDATED_AT,
    Column,
    Projection,
    Source,
)

PROJECTED_CHANNEL: Final = "motionledger_projected"
# recorded_at as epoch ms, rounded down (`domain.reducers.recorded_ms` does the same)
_AT: Final = "floor(extract(epoch FROM recorded_at) * 1000)::bigint"


def _literal(value: Any, sql_type: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = "'" + value.replace("'", "''") + "'"
    else:
        raise TypeError(f"no SQL literal for {value!r}")
    return f"{text}::{sql_type}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_sql(projection: Projection, source: Source, column: Column) -> str:
    field = None
    if source.field is not None:
        field = f"b.{_ident(projection.body_fields[source.field][0])}"
    if source.default is None:
        assert field is not None
        return field
    default = "e.at" if source.default is RECORDED else _literal(source.default, column.sql_type)
    return default if field is None else f"coalesce({field}, {default})"


def _contribution(projection: Projection, column: Column) -> str:
    """What an event of the batch gives `column`: NULL where its type does not set it."""
    exprs: dict[str, str] = {}
    for cls in projection.event_types:
        source = projection.sources[cls].get(column.name)
        creates = cls in projection.creators
        if source is not None and (creates or not column.fixed):
            exprs[TAG_OF[cls]] = _source_sql(projection, source, column)
    distinct = set(exprs.values())
    if len(exprs) == len(projection.event_types) and len(distinct) == 1:
        return distinct.pop()
    whens = " ".join(f"WHEN '{tag}' THEN {expr}" for tag, expr in exprs.items())
    return f"CASE e.type {whens} END"


def _row_id(projection: Projection) -> str:
    parts = [f"b.{_ident(projection.body_fields[key][0])}" for key in projection.key]
    return " || ':' || ".join(parts)


def _record(projection: Projection) -> str:
    fields = ", ".join(
        f"{_ident(json_name)} {sql_type}" for json_name, sql_type in projection.body_fields.values()
    )
    return f"jsonb_to_record(e.body) AS b({fields})"


def _types_filter(projection: Projection, cp: str) -> str:
    tags = ", ".join(f"'{tag}'" for tag in projection.tags)
    return f"e.type IN ({tags}) AND e.position > {cp}"


def _stored(projection: Projection) -> list[str]:
    return [c.name for c in projection.all_columns]


def _creating(projection: Projection, target: str, cp: str) -> str:
    """A table whose rows never change: each event is one new row."""
    columns = _stored(projection)
    values = [
        _row_id(projection),
        *(_contribution(projection, c) for c in projection.columns),
        "e.at",
        "e.at",
        "e.position",
    ]
    return (
        f"INSERT INTO {target} ({', '.join(columns)})\n"
        f"  SELECT {', '.join(values)}\n"
        f"    FROM batch e CROSS JOIN LATERAL {_record(projection)}\n"
        f"   WHERE {_types_filter(projection, cp)}"
    )


def _folding(projection: Projection, target: str, cp: str) -> list[tuple[str, str]]:
    """A table whose rows are patched: fold the batch per row, then insert or update."""
    name = projection.name
    creators = ", ".join(f"'{TAG_OF[cls]}'" for cls in projection.creators)
    contributions = ",\n         ".join(
        f"{_contribution(projection, c)} AS {c.name}" for c in projection.columns
    )
    contrib = (
        f"SELECT {_row_id(projection)} AS id, e.position, e.at, e.type IN ({creators}) AS creates,"
        f"\n         {contributions}\n"
        f"    FROM batch e CROSS JOIN LATERAL {_record(projection)}\n"
        f"   WHERE {_types_filter(projection, cp)}"
    )
    folds = []
    for c in projection.columns:
        direction = "" if c.fixed else " DESC"  # fixed: the creator's; patched: the last
        folds.append(
            f"(array_agg({c.name} ORDER BY position{direction}) "
            f"FILTER (WHERE {c.name} IS NOT NULL))[1] AS {c.name}"
        )
    fold = (
        "SELECT id, bool_or(creates) AS creates,\n         "
        + ",\n         ".join(folds)
        + ",\n         (array_agg(at ORDER BY position) FILTER (WHERE creates))[1] AS created_at,"
        "\n         (array_agg(at ORDER BY position DESC))[1] AS updated_at,"
        "\n         min(position) FILTER (WHERE creates) AS position"
        f"\n    FROM contrib_{name} GROUP BY id"
    )
    patched = [c.name for c in projection.columns if not c.fixed]
    columns = _stored(projection)
    insert = (
        f"INSERT INTO {target} AS t ({', '.join(columns)})\n"
        f"  SELECT {', '.join(columns)} FROM fold_{name} WHERE creates"
    )
    if projection.upserts:
        sets = [f"{c} = coalesce(EXCLUDED.{c}, t.{c})" for c in patched]
        insert += f"\n  ON CONFLICT ({ID}) DO UPDATE SET " + ", ".join(
            [*sets, f"{UPDATED_AT} = EXCLUDED.{UPDATED_AT}"]
        )
    sets = [f"{c} = coalesce(f.{c}, t.{c})" for c in patched]
    update = (
        f"UPDATE {target} AS t SET "
        + ", ".join([*sets, f"{UPDATED_AT} = f.{UPDATED_AT}"])
        + f"\n    FROM fold_{name} f WHERE NOT f.creates AND t.{ID} = f.{ID}"
    )
    return [
        (f"contrib_{name}", contrib),
        (f"fold_{name}", fold),
        (f"ins_{name}", insert),
        (f"upd_{name}", update),
    ]


_BATCH: Final = (
    f"SELECT position, type, lane, published_at, body, {_AT} AS at\n"
    "    FROM ledger.events WHERE position > {low} AND position <= {high}"
)


def _apply(
    projections: Sequence[Projection], targets: Mapping[str, str], cp: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The sub-statements that apply `batch` to each table, from its checkpoint `cp`."""
    ctes: list[tuple[str, str]] = []
    for projection in projections:
        target = targets.get(projection.name, projection.table)
        if projection.patches:
            ctes += _folding(projection, target, cp[projection.name])
        else:
            ctes.append(
                (f"ins_{projection.name}", _creating(projection, target, cp[projection.name]))
            )
    return ctes


def _with(ctes: list[tuple[str, str]], outputs: list[str]) -> str:
    body = ",\n".join(f"{name} AS {sql}" for name, sql in ctes)
    return f"WITH {body}\nSELECT {', '.join(outputs)}"


def _cte(sql: str, materialized: bool = False) -> str:
    return f"{'MATERIALIZED ' if materialized else ''}(\n  {sql}\n)"


def bulk_statement(projection: Projection, target: str) -> str:
    """A rebuild's load of ($1, $2] into one (shadow) table: no checkpoint, nothing else
    reads `batch`, so Postgres streams the range straight into the table's insert."""
    ctes = [("batch", _cte(_BATCH.format(low="$1", high="$2")))]
    ctes += [
        (n, _cte(sql))
        for n, sql in _apply([projection], {projection.name: target}, {projection.name: "$1"})
    ]
    return _with(ctes, ["1"])


def step_statement(projections: Sequence[Projection]) -> str:
    """One projector batch, whole, in one statement (one round trip, its own transaction).

    $1: the most positions to apply. It locks the tables' checkpoints (in name order, as a
    rebuild's swap does), applies the log from the lowest of them, moves each forward in the
    same transaction and NOTIFYs `motionledger_projected`; it answers `before` (the
    checkpoints it started from, in `names` order), `last` (the highest position applied,
    NULL if none), `head`, `events`, the batch's lanes and publish times, and the recorded
    time of the oldest event still to apply.
    """
    names = "ARRAY[" + ", ".join(f"'{p.name}'" for p in projections) + "]::text[]"
    ctes = [
        (
            "state",
            _cte(
                "SELECT projection, position FROM production.projection_state"
                f" WHERE projection = ANY({names}) ORDER BY projection FOR UPDATE",
                materialized=True,
            ),
        ),
        (
            "bounds",
            _cte(
                "SELECT s.low, least(s.low + $1, h.head) AS high, h.head"
                "  FROM (SELECT min(position) AS low FROM state) s,"
                "       (SELECT coalesce(max(position), 0) AS head FROM ledger.events) h",
                materialized=True,
            ),
        ),
        (
            "batch",
            _cte(
                _BATCH.format(low="(SELECT low FROM bounds)", high="(SELECT high FROM bounds)"),
                materialized=True,
            ),
        ),
    ]
    cps = {
        p.name: f"(SELECT position FROM state WHERE projection = '{p.name}')" for p in projections
    }
    ctes += [(n, _cte(sql)) for n, sql in _apply(projections, {}, cps)]
    last = "(SELECT max(position) FROM batch)"
    ctes.append(
        (
            "moved",
            _cte(
                "UPDATE production.projection_state"
                f" SET {POSITION} = greatest({POSITION}, {last}), updated_at = now()"
                f" WHERE projection = ANY({names}) AND {last} IS NOT NULL"
            ),
        )
    )
    outputs = [
        f"(SELECT array_agg(position ORDER BY array_position({names}, projection)) FROM state)"
        " AS before",
        f"{last} AS last",
        "(SELECT head FROM bounds) AS head",
        "(SELECT count(*) FROM batch) AS events",
        f"CASE WHEN {last} IS NOT NULL THEN pg_notify('{PROJECTED_CHANNEL}', {last}::text)"
        " END AS notified",
        "(SELECT array_agg(lane ORDER BY position) FROM batch) AS lanes",
        "(SELECT array_agg(extract(epoch FROM published_at)::float8 ORDER BY position)"
        " FROM batch) AS published",
        "(SELECT recorded_at FROM ledger.events"
        f" WHERE position = coalesce({last}, (SELECT low FROM bounds)) + 1) AS next_recorded_at",
    ]
    return _with(ctes, outputs)


def row_fields(projection: Projection, alias: str = "t", name: str = "r") -> str:
    """A LATERAL subquery naming a row's fields as the HTTP endpoint shows them; then
    `row_to_json(r)` is the row as compact JSON, built in Postgres."""
    pairs = [f'{alias}.{ID} AS "_id"', f'{alias}.{CREATED_AT} AS "_creationTime"']
    pairs += [f'{alias}.{c.name} AS "{c.json_name}"' for c in projection.columns]
    pairs += [f'{alias}.{CREATED_AT} AS "createdAt"', f'{alias}.{UPDATED_AT} AS "updatedAt"']
    return f"CROSS JOIN LATERAL (SELECT {', '.join(pairs)}) AS {name}"
