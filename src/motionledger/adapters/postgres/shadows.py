"""The shadow tables a rebuild loads from the log and swaps in for the live read tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from .errors import translating
from .locks import Lock, try_lock

SHADOW_SUFFIX: Final = "__rebuild"
# A rebuild's connections: a crash before the swap leaves only shadows, dropped by the next
# rebuild, so the bulk load need not wait for each commit's flush; sorts and index builds
# get room.
_BULK_SESSION: Final = (
    "SET synchronous_commit = off; SET work_mem = '64MB'; SET maintenance_work_mem = '256MB'"
)
SWAP_LOCK_TIMEOUT: Final = "2s"  # queued readers wait at most this long behind the swap

_LOCK_STATE: Final = """
SELECT projection, position FROM production.projection_state
 WHERE projection = ANY($1::text[])
 ORDER BY projection
   FOR UPDATE
"""


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


@translating
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


@translating
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


@translating
async def build_index(conn: asyncpg.Connection, name: str, index: IndexDef) -> None:
    """One index of table `name`'s shadow, with the constraint it backs."""
    await conn.execute(index.sql)
    if index.constraint is not None:
        kind = "PRIMARY KEY" if index.constraint == "p" else "UNIQUE"
        await conn.execute(
            f"ALTER TABLE production.{shadow(name)} ADD CONSTRAINT {shadow(index.name)} "
            f"{kind} USING INDEX {shadow(index.name)}"
        )


@translating
async def create_indexes(conn: asyncpg.Connection, name: str, *, unique: bool) -> None:
    """Build the shadow's unique indexes (`unique`) or the others, with their constraints."""
    for index in await index_defs(conn, name):
        if index.unique == unique:
            await build_index(conn, name, index)


@translating
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


@translating
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


@translating
async def drop_shadows(conn: asyncpg.Connection, names: Sequence[str]) -> None:
    for name in names:
        await conn.execute(f"DROP TABLE IF EXISTS production.{shadow(name)}")


@translating
async def begin_rebuild(conn: asyncpg.Connection) -> bool:
    """Take the rebuild lock (False: another rebuild has it) and set up for bulk work."""
    if not await try_lock(conn, Lock.REBUILD):
        return False
    await conn.execute(_BULK_SESSION)
    return True


@translating
async def prepare_bulk(conn: asyncpg.Connection) -> None:
    """Another connection of the same rebuild."""
    await conn.execute(_BULK_SESSION)


@translating
async def analyze(conn: asyncpg.Connection, name: str) -> None:
    """The planner's statistics of a shadow, and the visibility map that lets index-only
    scans skip the heap (the derived reads' probes), both ready when it goes live."""
    await conn.execute(f"VACUUM (ANALYZE) production.{shadow(name)}")


@translating
async def count_rows(conn: asyncpg.Connection, name: str, *, of_shadow: bool = False) -> int:
    table = shadow(name) if of_shadow else name
    return int(await conn.fetchval(f"SELECT count(*) FROM production.{table}"))


@translating
async def apply_range(
    conn: asyncpg.Connection, statements: Sequence[str], low: int, high: int
) -> None:
    """Positions (low, high] through each bulk statement, in one transaction."""
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement, low, high)


async def begin_swap(conn: asyncpg.Connection) -> None:
    """Inside the swap's transaction: wait for locks at most SWAP_LOCK_TIMEOUT (queued
    readers wait behind the swap), and the swap itself is flushed before it answers."""
    await conn.execute(
        f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'; SET LOCAL synchronous_commit = on"
    )


@translating
async def swap(
    conn: asyncpg.Connection, names: Sequence[str], statements: Sequence[str], position: int
) -> int:
    """One short transaction: hold off the live projector, apply what the shadows still
    miss of the log, and make them the live tables. Raises Contended when the tables' locks
    are not granted within SWAP_LOCK_TIMEOUT (the caller catches up and tries again)."""
    async with conn.transaction():
        await begin_swap(conn)
        await lock_for_swap(conn, names)
        head = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledger.events"))
        if head > position:
            for statement in statements:
                await conn.execute(statement, position, head)
        await swap_in(conn, names, max(head, position))
    return max(head, position)
