"""Versioned schema migrations: numbered .sql files, each applied once, in order.

``migrations/NNNN_name.sql`` are the schema's history; ``schema_version`` records which of
them a database has had (one row each, with when). Opening a store applies the missing
ones, each in its own ``BEGIN IMMEDIATE`` transaction, so a migration that fails leaves the
database at the version before it, and two processes opening one database at once cannot
both apply the same file (the second sees the first's row once it gets the write lock).

Why not ``CREATE TABLE IF NOT EXISTS`` plus ALTERs at every open, as before: that cannot
rename, drop, or backfill, and it cannot tell a database written by a newer colabhive,
which it would then half-understand. Such a database is refused here, naming both versions.

A database made before versioning (tables, no ``schema_version``) is adopted: the columns
that code used to add at open are added where missing (``adopt.sql``), migration 1 (which
alone uses IF NOT EXISTS throughout) creates what is still missing, and it is marked
version 1; later migrations then run as on any other database.
"""

from __future__ import annotations

import re
import sqlite3
import time
from importlib import resources
from importlib.resources.abc import Traversable

import aiosqlite
import msgspec

from ..errors import SchemaTooNew, StoreError

__all__ = ["Migration", "load_migrations", "migrate", "statements"]

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_ADD_COLUMN = re.compile(r"^ALTER TABLE (\w+) ADD COLUMN (\w+)\b", re.I)


class Migration(msgspec.Struct, frozen=True):
    version: int
    """The file's number: 1 for ``0001_initial.sql``."""
    name: str
    """The rest of the file name (``initial``), recorded beside the version."""
    sql: str


def _package_dir(name: str) -> Traversable:
    return resources.files(__package__).joinpath(name)


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    """Every ``NNNN_*.sql`` in ``folder`` (the packaged ``migrations/`` by default), by number.

    The numbers must run 1, 2, 3 … with no gap or repeat: a gap would let a database skip a
    migration for good, so a missing file is a packaging error found at open, not later.
    """
    folder = folder or _package_dir("migrations")
    found = []
    for f in folder.iterdir():
        m = _FILE.match(f.name)
        if m:
            found.append(Migration(version=int(m[1]), name=m[2], sql=f.read_text()))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StoreError(f"schema migrations must be numbered 0001, 0002, … with no gap or repeat; found {numbers}")
    return found


def statements(sql: str) -> list[str]:
    """Split a script into whole statements (``sqlite3.complete_statement`` knows triggers
    and quoted semicolons), so each runs inside one transaction we control:
    ``executescript`` would commit first and run the rest in autocommit."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if _code(buf):
                out.append(_without_leading_comments(buf))
            buf = ""
    if _code(buf):
        raise StoreError(f"unterminated SQL statement: {buf.strip()[:80]!r}")
    return out


def _without_leading_comments(sql: str) -> str:
    lines = sql.strip().splitlines()
    while lines[0].strip().startswith("--") or not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


async def migrate(db: aiosqlite.Connection, q: dict[str, str], where: str,
                  migrations: list[Migration] | None = None) -> int:
    """Bring ``db`` to the newest migration and return that version.

    ``q`` holds the store's named queries; ``where`` names the database in errors.
    Raises SchemaTooNew when the database is newer than every migration this code has.
    """
    migrations = load_migrations() if migrations is None else migrations
    newest = migrations[-1].version if migrations else 0
    await db.execute(q["create_schema_version"])
    await db.commit()
    current = await _version(db, q)
    if current > newest:
        raise SchemaTooNew(_too_new(where, current, newest))
    for m in migrations[current:]:
        await _apply(db, q, where, m, newest)
    return await _version(db, q)


async def _version(db: aiosqlite.Connection, q: dict[str, str]) -> int:
    async with db.execute(q["schema_version"]) as cur:
        row = await cur.fetchone()
    return int(row[0] or 0) if row is not None else 0


def _too_new(where: str, found: int, known: int) -> str:
    return (f"the state database {where} is at schema version {found}, newer than this colabhive knows "
            f"(up to {known}); run a colabhive at least as new as the one that wrote it, or use another state_dir")


async def _apply(db: aiosqlite.Connection, q: dict[str, str], where: str, m: Migration, newest: int) -> None:
    try:
        await db.execute(q["begin_immediate"])  # waits up to busy_timeout for another writer
        current = await _version(db, q)  # again, under the write lock: another process may have moved it
        if current > newest:
            raise SchemaTooNew(_too_new(where, current, newest))
        if current >= m.version:
            await db.rollback()
            return
        if current != m.version - 1:
            raise StoreError(f"the state database {where} is at schema version {current}; "
                             f"cannot apply migration {m.version} before {current + 1}")
        if m.version == 1 and await _has_tables(db, q):
            await _add_pre_versioning_columns(db, q)
        for stmt in statements(m.sql):
            await db.execute(stmt)
        await db.execute(q["set_schema_version"], {"version": m.version, "name": m.name, "at": time.time()})
        await db.commit()
    except sqlite3.Error as exc:
        await db.rollback()
        raise StoreError(f"migration {m.version:04d}_{m.name} failed on {where}: {exc}") from exc
    except BaseException:
        await db.rollback()
        raise


async def _has_tables(db: aiosqlite.Connection, q: dict[str, str]) -> bool:
    async with db.execute(q["user_tables"]) as cur:
        return bool(await cur.fetchall())


async def _add_pre_versioning_columns(db: aiosqlite.Connection, q: dict[str, str]) -> None:
    """Adoption: each ALTER in adopt.sql whose table exists without that column."""
    for stmt in statements(_package_dir("adopt.sql").read_text()):
        m = _ADD_COLUMN.match(stmt)
        if m is None:
            raise StoreError(f"adopt.sql may only add columns, not: {stmt[:80]!r}")
        table, column = m[1], m[2]
        async with db.execute(q["table_columns"], {"table": table}) as cur:
            have = {row[0] for row in await cur.fetchall()}
        if have and column not in have:  # no columns: no table yet, and migration 1 makes it whole
            await db.execute(stmt)
