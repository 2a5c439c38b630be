"""Versioned migrations (colabhive/store/migrate.py) on real SQLite files.

A fresh database gets every migration; one made before versioning is adopted (missing
columns added, marked version 1) and keeps its rows; one written by a newer colabhive is
refused, by the store and by the CLI in one sentence; reopening changes nothing; a
migration that fails leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from colabhive.errors import HiveError, SchemaTooNew, StoreError
from colabhive.store import Store
from colabhive.store.migrate import Migration, load_migrations, migrate

DATA = Path(__file__).parent / "data"
NEWEST = load_migrations()[-1].version

OLD_TASKS = """CREATE TABLE tasks (
    id TEXT PRIMARY KEY, fn TEXT NOT NULL, input BLOB NOT NULL, status TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '', idem_key TEXT, traceparent TEXT NOT NULL DEFAULT '',
    attempts TEXT NOT NULL DEFAULT '[]', node_id TEXT, output BLOB, error TEXT, run_ms REAL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL)"""


def _open_close(path: Path) -> int:
    async def run() -> int:
        store = Store(path)
        await store.open()
        await store.close()
        return store.version

    return asyncio.run(run())


def _shape(path: Path) -> dict[str, object]:
    """Every table, index and column (name, type, not null, default, pk) of a database."""
    db = sqlite3.connect(path)
    try:
        objects = sorted(db.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        tables = [name for kind, name, _ in objects if kind == "table"]
        info = "SELECT * FROM pragma_table_info(?)"
        columns = {t: sorted(tuple(r[1:]) for r in db.execute(info, (t,))) for t in tables}
        return {"objects": objects, "columns": columns}
    finally:
        db.close()


def _versions(path: Path) -> list[tuple[int, str, float]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT version, name, applied_at FROM schema_version ORDER BY version"))
    finally:
        db.close()


def test_a_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"
    assert _open_close(path) == NEWEST
    rows = _versions(path)
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in load_migrations()]
    assert rows[0][:2] == (1, "initial")
    tables = {o[1] for o in _shape(path)["objects"] if o[0] == "table"}  # type: ignore[union-attr]
    assert {"meta", "nodes", "tasks", "api_keys", "join_tokens", "calibrations", "schema_version"} <= tables


def test_reopening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"
    _open_close(path)
    before, rows = _shape(path), _versions(path)
    assert _open_close(path) == NEWEST
    assert _open_close(path) == NEWEST
    assert _shape(path) == before and _versions(path) == rows  # same rows, same applied_at


def test_a_database_from_before_versioning_is_adopted_and_keeps_its_rows(tmp_path: Path) -> None:
    """The schema.sql of commit abc12de: no energy columns, no calibrations table."""
    old = tmp_path / "old.sqlite3"
    db = sqlite3.connect(old)
    db.executescript((DATA / "schema_abc12de.sql").read_text())
    db.execute("INSERT INTO tasks (id, fn, input, status, created_at) VALUES ('t1', 'echo', x'00', 'running', 1.0)")
    db.execute("INSERT INTO api_keys (id, tenant, hash, created_at) VALUES ('k1', 'acme', 'h', 1.0)")
    db.commit()
    db.close()
    assert "energy_j" not in {r[1] for r in sqlite3.connect(old).execute("PRAGMA table_info(tasks)")}

    assert _open_close(old) == NEWEST
    assert _versions(old)[0][:2] == (1, "initial")
    fresh = tmp_path / "fresh.sqlite3"
    _open_close(fresh)
    assert _shape(old) == _shape(fresh)  # the adopted database is the same shape as a new one
    db = sqlite3.connect(old)
    assert db.execute("SELECT id, status FROM tasks").fetchall() == [("t1", "running")]
    assert db.execute("SELECT tenant FROM api_keys").fetchall() == [("acme",)]
    db.close()


def test_a_database_made_by_the_last_unversioned_code_is_adopted(tmp_path: Path) -> None:
    """Today's full schema without a version table (what the ALTER-at-open code left behind)."""
    path = tmp_path / "hive.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(load_migrations()[0].sql)
    db.close()
    assert _open_close(path) == NEWEST
    fresh = tmp_path / "fresh.sqlite3"
    _open_close(fresh)
    assert _shape(path) == _shape(fresh)


def test_an_old_tasks_table_gains_the_energy_columns(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"
    db = sqlite3.connect(path)
    db.execute(OLD_TASKS)
    db.execute("INSERT INTO tasks (id, fn, input, status, created_at) VALUES ('t1', 'echo', x'00', 'running', 1.0)")
    db.commit()
    db.close()

    async def finish() -> list[dict[str, object]]:
        store = Store(path)
        await store.open()
        try:
            await store.execute("finish_task", {
                "id": "t1", "status": "succeeded", "output": b"{}", "error": None, "node_id": "n", "run_ms": 1.0,
                "attempts": "[]", "finished_at": 2.0, "energy_j": 0.5, "energy_estimated": 1, "carbon_g": 3e-5,
                "dtype": "bf16",
            })
            return await store.fetch("get_task", {"id": "t1"})
        finally:
            await store.close()

    row = asyncio.run(finish())[0]
    assert (row["status"], row["energy_j"], row["energy_estimated"], row["carbon_g"], row["dtype"]) == (
        "succeeded", 0.5, 1, 3e-5, "bf16")
    asyncio.run(finish())


def _from_the_future(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "hive.sqlite3"
    _open_close(path)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'from_the_future', 0)",
               (NEWEST + 1,))
    db.commit()
    db.close()
    return path


def test_a_newer_database_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = _from_the_future(tmp_path)
    before = _shape(path)
    with pytest.raises(SchemaTooNew) as exc:
        _open_close(path)
    assert isinstance(exc.value, StoreError) and isinstance(exc.value, HiveError)
    msg = exc.value.message
    assert f"schema version {NEWEST + 1}" in msg and f"up to {NEWEST}" in msg and str(path) in msg
    assert _shape(path) == before


@pytest.mark.parametrize("command", [["keys", "create", "--tenant", "acme"], ["gateway", "--port", "1"]])
def test_the_cli_refuses_a_newer_database_in_one_sentence(tmp_path: Path, command: list[str]) -> None:
    path = _from_the_future(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "colabhive", *command, "--state-dir", str(path.parent)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "COLABHIVE_LOG_LEVEL": "ERROR"},
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("colabhive: the state database") and f"up to {NEWEST}" in lines[0]
    assert p.stdout == ""  # no key was minted


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"
    path.write_bytes(b"this is not SQLite, " * 100)
    with pytest.raises(StoreError, match=f"cannot open the state database {path}: file is not a database"):
        _open_close(path)


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"
    _open_close(path)
    before = _shape(path)
    broken = Migration(version=NEWEST + 1, name="broken",
                       sql="CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n")

    async def run() -> None:
        store = Store(path)
        await store.open()
        try:
            await migrate(store.db, store.q, str(path), [*load_migrations(), broken])  # type: ignore[arg-type]
        finally:
            await store.close()

    with pytest.raises(StoreError, match=f"{NEWEST + 1:04d}_broken failed.*no_such_table"):
        asyncio.run(run())
    assert _shape(path) == before  # no half table, no version row
    assert [v for v, _, _ in _versions(path)][-1] == NEWEST


def test_two_processes_opening_one_new_database_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "hive.sqlite3"

    async def both() -> list[int]:
        stores = [Store(path), Store(path)]
        await asyncio.gather(*(s.open() for s in stores))
        for s in stores:
            await s.close()
        return [s.version for s in stores]

    assert asyncio.run(both()) == [NEWEST, NEWEST]
    assert [v for v, _, _ in _versions(path)] == list(range(1, NEWEST + 1))


def test_every_numbered_file_is_picked_up_in_order_and_gaps_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE b (x);\n")
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x);\n")
    (tmp_path / "0010_notes.md").write_text("not a migration")
    (tmp_path / "README.sql").write_text("-- not numbered, not a migration\n")
    assert [(m.version, m.name) for m in load_migrations(tmp_path)] == [(1, "first"), (2, "second")]
    (tmp_path / "0004_fourth.sql").write_text("CREATE TABLE d (x);\n")
    with pytest.raises(StoreError, match=r"no gap or repeat; found \[1, 2, 4\]"):
        load_migrations(tmp_path)
