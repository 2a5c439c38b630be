"""A state database from before energy accounting opens, gains the new task columns, and
keeps its rows (CREATE TABLE IF NOT EXISTS alone would leave the old table as it was)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from colabhive.store import Store

OLD_TASKS = """CREATE TABLE tasks (
    id TEXT PRIMARY KEY, fn TEXT NOT NULL, input BLOB NOT NULL, status TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '', idem_key TEXT, traceparent TEXT NOT NULL DEFAULT '',
    attempts TEXT NOT NULL DEFAULT '[]', node_id TEXT, output BLOB, error TEXT, run_ms REAL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL)"""


def test_an_old_database_gains_the_energy_columns(tmp_path: Path) -> None:
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
            })
            return await store.fetch("get_task", {"id": "t1"})
        finally:
            await store.close()

    row = asyncio.run(finish())[0]
    assert (row["status"], row["energy_j"], row["energy_estimated"], row["carbon_g"]) == ("succeeded", 0.5, 1, 3e-5)
    asyncio.run(finish())  # opening again is a no-op: the columns are there now
