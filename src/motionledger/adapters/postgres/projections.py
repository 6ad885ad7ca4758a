"""Running the projection SQL: one batch per transaction with its checkpoint, the projector
lease, and the shadow tables a rebuild builds and swaps in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import asyncpg

from ...domain.projections import Projection
from .projection_sql import step_statement

# pg_advisory_lock key of the projector lease: one projecting process per database
PROJECTOR_LEASE: Final = 0x6D6C_7072_6F6A_6563
# held by a rebuild for its whole run: two rebuilds would fight over the shadow tables
REBUILD_LOCK: Final = 0x6D6C_7265_6275_696C
SHADOW_SUFFIX: Final = "__rebuild"

_LOCK_STATE: Final = """
SELECT projection, position FROM production.projection_state
 WHERE projection = ANY($1::text[])
 ORDER BY projection
   FOR UPDATE
"""


@dataclass(frozen=True, slots=True)
class Step:
    """What one projector transaction did."""

    before: dict[str, int]  # the checkpoints it started from
    position: int  # the highest position applied (the new checkpoint of the laggards)
    head: int  # the log head it saw
    events: int
    lanes: list[str] = field(default_factory=list)
    published: list[float] = field(default_factory=list)  # epoch seconds, per event
    next_recorded_at: datetime | None = None  # the oldest event still to apply

    @property
    def caught_up(self) -> bool:
        return self.position >= self.head


class Applier:
    """Applies the log to a fixed set of projections, one batch per statement: a single
    round trip locks the checkpoints, applies, moves them and NOTIFYs, so a batch is never
    kept waiting between statements by whatever else shares the event loop."""

    def __init__(self, projections: Sequence[Projection], *, batch: int) -> None:
        self.names = [p.name for p in projections]
        self.batch = batch
        self._sql = step_statement(projections)

    async def step(self, conn: asyncpg.Connection) -> Step:
        row = await conn.fetchrow(self._sql, self.batch)
        assert row is not None
        before = dict(zip(self.names, row["before"] or [], strict=False))
        missing = set(self.names) - set(before)
        if missing:
            raise RuntimeError(f"production.projection_state has no row for {missing}")
        low = min(before.values())
        return Step(
            before,
            row["last"] if row["last"] is not None else low,
            row["head"],
            row["events"],
            row["lanes"] or [],
            row["published"] or [],
            row["next_recorded_at"],
        )


async def lag(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Per projection: checkpoint, head, and the age (ms) of its oldest unapplied event."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT s.projection, s.position, h.head,
               CASE WHEN h.head > s.position THEN
                    (extract(epoch FROM clock_timestamp() - e.recorded_at) * 1000)::bigint
               ELSE 0 END AS lag_ms
          FROM production.projection_state s
         CROSS JOIN (SELECT coalesce(max(position), 0) AS head FROM ledger.events) h
          LEFT JOIN ledger.events e ON e.position = s.position + 1
         ORDER BY s.projection
        """
    )
    return rows


async def head(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events")
    return int(value)


# -- shadow tables for a rebuild ---------------------------------------------------------
def shadow(name: str) -> str:
    return f"{name}{SHADOW_SUFFIX}"


@dataclass(frozen=True, slots=True)
class IndexDef:
    name: str
    sql: str  # CREATE [UNIQUE] INDEX ... ON the shadow table, under the shadow name
    constraint: str | None  # 'p' or 'u': the index backs a constraint of that kind

    @property
    def unique(self) -> bool:
        return self.constraint is not None or self.sql.startswith("CREATE UNIQUE")


_INDEX_ON: Final = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (\S+) ")


async def index_defs(conn: asyncpg.Connection, name: str) -> list[IndexDef]:
    """The live table's indexes (as the migrations made them), re-aimed at its shadow."""
    rows = await conn.fetch(
        """
        SELECT i.relname AS index, pg_get_indexdef(x.indexrelid) AS def, c.contype
          FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid
          LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
         WHERE x.indrelid = $1::regclass
         ORDER BY i.relname
        """,
        f"production.{name}",
    )
    defs = []
    for row in rows:
        match = _INDEX_ON.match(row["def"])
        if match is None or match[2] != row["index"]:
            raise RuntimeError(f"unexpected index definition: {row['def']}")
        sql = _INDEX_ON.sub(
            f"CREATE {match[1] or ''}INDEX {shadow(row['index'])} ON production.{shadow(name)} ",
            row["def"],
        )
        contype = row["contype"] if row["contype"] in ("p", "u") else None
        defs.append(IndexDef(row["index"], sql, contype))
    return defs


async def create_shadow(conn: asyncpg.Connection, name: str) -> None:
    """An empty copy of the live table: columns, defaults, checks and grants, no indexes."""
    live, copy = f"production.{name}", f"production.{shadow(name)}"
    await conn.execute(f"DROP TABLE IF EXISTS {copy}")
    await conn.execute(
        f"CREATE TABLE {copy} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMPRESSION)"
    )
    grants = await conn.fetch(
        """
        SELECT coalesce(quote_ident(r.rolname), 'PUBLIC') AS grantee, a.privilege_type,
               a.is_grantable, quote_ident(o.rolname) AS owner,
               o.rolname = current_user AS mine
          FROM pg_class c
          JOIN pg_roles o ON o.oid = c.relowner
          LEFT JOIN LATERAL aclexplode(c.relacl) a ON true
          LEFT JOIN pg_roles r ON r.oid = a.grantee
         WHERE c.oid = $1::regclass
        """,
        live,
    )
    for grant in grants:
        if grant["privilege_type"] is not None and grant["grantee"] != grant["owner"]:
            option = " WITH GRANT OPTION" if grant["is_grantable"] else ""
            await conn.execute(
                f"GRANT {grant['privilege_type']} ON {copy} TO {grant['grantee']}{option}"
            )
    if grants and not grants[0]["mine"]:
        await conn.execute(f"ALTER TABLE {copy} OWNER TO {grants[0]['owner']}")


async def build_index(conn: asyncpg.Connection, name: str, index: IndexDef) -> None:
    """One index of table `name`'s shadow, with the constraint it backs."""
    await conn.execute(index.sql)
    if index.constraint is not None:
        kind = "PRIMARY KEY" if index.constraint == "p" else "UNIQUE"
        await conn.execute(
            f"ALTER TABLE production.{shadow(name)} ADD CONSTRAINT {shadow(index.name)} "
            f"{kind} USING INDEX {shadow(index.name)}"
        )


async def create_indexes(conn: asyncpg.Connection, name: str, *, unique: bool) -> None:
    """Build the shadow's unique indexes (`unique`) or the others, with their constraints."""
    for index in await index_defs(conn, name):
        if index.unique == unique:
            await build_index(conn, name, index)


async def lock_for_swap(conn: asyncpg.Connection, names: Sequence[str]) -> dict[str, int]:
    """Inside the swap's transaction: wait out the live projector's batch, then hold it off.

    The live tables first, in canonical order and in a mode readers pass but writers do not
    (the projector takes its table locks, in the same order, before its checkpoints' row
    locks: taking them the other way round here could deadlock with it); then the
    checkpoints' rows.
    """
    tables = ", ".join(f"production.{name}" for name in names)
    await conn.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
    rows = await conn.fetch(_LOCK_STATE, list(names))
    return {row["projection"]: row["position"] for row in rows}


async def swap_in(conn: asyncpg.Connection, names: Sequence[str], position: int) -> None:
    """Inside the swap's transaction: the shadows become the live tables at `position`."""
    for name in names:
        shadow_indexes = await conn.fetch(
            """
            SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = $1::regclass
            """,
            f"production.{shadow(name)}",
        )
        await conn.execute(f"DROP TABLE production.{name}")
        await conn.execute(f"ALTER TABLE production.{shadow(name)} RENAME TO {name}")
        for (index,) in shadow_indexes:
            if index.endswith(SHADOW_SUFFIX):
                await conn.execute(
                    f"ALTER INDEX production.{index} RENAME TO {index[: -len(SHADOW_SUFFIX)]}"
                )
    await conn.execute(
        "UPDATE production.projection_state SET position = $2, updated_at = now() "
        "WHERE projection = ANY($1::text[])",
        list(names),
        position,
    )


async def drop_shadows(conn: asyncpg.Connection, names: Sequence[str]) -> None:
    for name in names:
        await conn.execute(f"DROP TABLE IF EXISTS production.{shadow(name)}")
