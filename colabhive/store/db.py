"""The embedded store: one aiosqlite connection in WAL mode, SQL kept in .sql files.

Opening it brings the schema up to date (store/migrate.py) or refuses a database written
by a newer colabhive.

Sync invocations never touch the disk on their hot path: their log records are buffered
and written in one transaction per flush interval.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from ..errors import StoreError
from .migrate import migrate

__all__ = ["Store", "load_queries"]

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.M)


def load_queries(text: str) -> dict[str, str]:
    """Split a file of ``-- name: x`` blocks into {name: sql}."""
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db: aiosqlite.Connection | None = None
        self.version = 0
        """The schema version after open (the newest migration this code has)."""
        self.q = load_queries(resources.files(__package__).joinpath("queries.sql").read_text())
        self._pending: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = await aiosqlite.connect(self.path)
        self.db.row_factory = aiosqlite.Row
        try:
            await self._settings()
            self.version = await migrate(self.db, self.q, str(self.path))
        except sqlite3.Error as exc:  # not a database, locked past busy_timeout, read-only, ...
            await self._close_connection()
            raise StoreError(f"cannot open the state database {self.path}: {exc}") from exc
        except BaseException:
            await self._close_connection()
            raise
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _settings(self, attempts: int = 100) -> None:
        """The connection PRAGMAs. Switching a new file to WAL can fail with "locked" at once,
        without waiting on busy_timeout, while another process opens it too: retry briefly."""
        assert self.db is not None
        for attempt in range(attempts):
            try:
                await self.db.executescript(self.q["connection_settings"])
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05)

    async def _close_connection(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        await self.flush()
        await self._close_connection()

    async def execute(self, name: str, params: dict[str, Any] | None = None) -> None:
        assert self.db is not None
        await self.db.execute(self.q[name], params or {})
        await self.db.commit()

    async def fetch(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert self.db is not None
        async with self.db.execute(self.q[name], params or {}) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def many(self, name: str, rows: list[dict[str, Any]]) -> None:
        assert self.db is not None
        if rows:
            await self.db.executemany(self.q[name], rows)
            await self.db.commit()

    # ---- buffered invocation log ------------------------------------------------------
    def log_invocation(self, **row: Any) -> None:
        row.setdefault("created_at", time.time())
        self._pending.append(row)

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if rows and self.db is not None:
            await self.many("log_invocation", rows)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.flush()
            except Exception:  # a full disk must not take the gateway down; keep serving
                import logging

                logging.getLogger(__name__).exception("invocation log flush failed")
