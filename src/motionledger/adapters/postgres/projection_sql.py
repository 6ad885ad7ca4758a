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
from dataclasses import dataclass
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
        insert += (
            f"\n  ON CONFLICT ({ID}) DO UPDATE SET "
            + ", ".join([*sets, f"{UPDATED_AT} = EXCLUDED.{UPDATED_AT}"])
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


@dataclass(frozen=True, slots=True)
class ApplyStatement:
    """`sql` takes $1 (after), $2 (up to and including), then one checkpoint per projection,
    then (with `checkpoint`) the projection names; it answers one row: `last` (the highest
    position in the range, NULL if none), `events`, and with `timings` the lanes and
    publish times of the batch and the recorded time of the first position after it."""

    sql: str
    projections: tuple[str, ...]


def apply_statement(
    projections: Sequence[Projection],
    targets: Mapping[str, str] | None = None,
    *,
    checkpoint: bool = True,
    timings: bool = True,
) -> ApplyStatement:
    targets = targets or {}
    ctes: list[tuple[str, str]] = [
        (
            "batch",
            f"SELECT position, type, lane, published_at, body, {_AT} AS at\n"
            "    FROM ledger.events WHERE position > $1 AND position <= $2",
        )
    ]
    for index, projection in enumerate(projections):
        target = targets.get(projection.name, projection.table)
        cp = f"${index + 3}"
        if projection.patches:
            ctes += _folding(projection, target, cp)
        else:
            ctes.append((f"ins_{projection.name}", _creating(projection, target, cp)))
    last = "(SELECT max(position) FROM batch)"
    if checkpoint:
        names = f"${len(projections) + 3}"
        ctes.append(
            (
                "state",
                "UPDATE production.projection_state"
                f" SET {POSITION} = greatest({POSITION}, {last}), updated_at = now()"
                f" WHERE projection = ANY({names}::text[]) AND {last} IS NOT NULL",
            )
        )
    # Without a checkpoint or timings (a rebuild's bulk load) nothing else reads `batch`, so
    # Postgres inlines it into the one table's scan instead of materialising the range.
    outputs = ["NULL::bigint AS last", "NULL::bigint AS events"]
    if checkpoint or timings:
        outputs = [f"{last} AS last", "(SELECT count(*) FROM batch) AS events"]
    if checkpoint:
        outputs.append(
            f"CASE WHEN {last} IS NOT NULL THEN pg_notify('{PROJECTED_CHANNEL}', {last}::text)"
            " END AS notified"
        )
    if timings:
        outputs += [
            "(SELECT array_agg(lane ORDER BY position) FROM batch) AS lanes",
            "(SELECT array_agg(extract(epoch FROM published_at)::float8 ORDER BY position)"
            " FROM batch) AS published",
            f"(SELECT recorded_at FROM ledger.events WHERE position = coalesce({last}, $1) + 1)"
            " AS next_recorded_at",
        ]
    body = ",\n".join(f"{name} AS (\n  {sql}\n)" for name, sql in ctes)
    sql = f"WITH {body}\nSELECT {', '.join(outputs)}"
    return ApplyStatement(sql, tuple(p.name for p in projections))


def row_json(projection: Projection, alias: str = "t") -> str:
    """A read-table row as the HTTP endpoint shows it: a JSON object built in Postgres."""
    pairs = [f"'_id', {alias}.{ID}", f"'_creationTime', {alias}.{CREATED_AT}"]
    pairs += [f"'{c.json_name}', {alias}.{c.name}" for c in projection.columns]
    pairs += [f"'createdAt', {alias}.{CREATED_AT}", f"'updatedAt', {alias}.{UPDATED_AT}"]
    return f"json_build_object({', '.join(pairs)})"
