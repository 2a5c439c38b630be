"""The durable side of dispatch: async tasks journaled in SQLite.

An async task is committed before its 202 goes out, so a ``kill -9`` of the gateway
loses nothing: at start every queued or running row is put back on its queue. Results
are written with ``WHERE status IN ('queued', 'running')``, so however many times a task
runs (a node that dies after finishing, a gateway that dies before writing), exactly one
result is recorded. Status changes are batched into one transaction per loop turn to
keep the commit rate flat under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from typing import Any

from ..store import Store

__all__ = ["Journal", "TaskRow"]

log = logging.getLogger("colabhive.journal")
TaskRow = dict[str, Any]


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._updates: list[tuple[str, dict[str, Any]]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())

    async def stop(self) -> None:
        await self.drain()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    # ---- creation (awaited: the caller's 202 depends on it) ---------------------------
    async def insert(self, fn: str, body: bytes, tenant: str, idem_key: str | None, traceparent: str) -> tuple[TaskRow, bool]:
        """Insert a queued task; with an idempotency key seen before, return that task instead."""
        if idem_key is not None:
            existing = await self.find_idem(tenant, idem_key)
            if existing is not None:
                return existing, False
        row = {
            "id": uuid.uuid4().hex,
            "fn": fn,
            "input": body,
            "tenant": tenant,
            "idem_key": idem_key,
            "traceparent": traceparent,
            "created_at": time.time(),
        }
        try:
            await self.store.execute("insert_task", row)
        except sqlite3.IntegrityError:  # a concurrent request with the same key won the race
            existing = await self.store.fetch("task_by_idem", {"tenant": tenant, "idem_key": idem_key})
            return existing[0], False
        return {**row, "status": "queued", "attempts": "[]"}, True

    async def find_idem(self, tenant: str, idem_key: str) -> TaskRow | None:
        await self.drain()  # a finished-but-unwritten task must not look still running
        rows = await self.store.fetch("task_by_idem", {"tenant": tenant, "idem_key": idem_key})
        return rows[0] if rows else None

    # ---- status changes (batched) -------------------------------------------------------
    def running(self, task_id: str, node_id: str, attempts: list[str]) -> None:
        self._queue(
            "mark_running",
            {"id": task_id, "node_id": node_id, "attempts": json.dumps(attempts), "started_at": time.time()},
        )

    def finish(
        self,
        task_id: str,
        status: str,
        *,
        output: bytes | None = None,
        error: dict[str, str] | None = None,
        node_id: str | None = None,
        run_ms: float | None = None,
        attempts: list[str] | None = None,
        energy_j: float | None = None,
        energy_estimated: bool = False,
        carbon_g: float | None = None,
        dtype: str = "",
    ) -> None:
        self._queue(
            "finish_task",
            {
                "id": task_id,
                "status": status,
                "output": output,
                "error": json.dumps(error) if error else None,
                "node_id": node_id,
                "run_ms": run_ms,
                "attempts": json.dumps(attempts or []),
                "finished_at": time.time(),
                "energy_j": energy_j,
                "energy_estimated": None if energy_j is None else int(energy_estimated),
                "carbon_g": carbon_g,
                "dtype": dtype or None,
            },
        )

    def _queue(self, query: str, params: dict[str, Any]) -> None:
        self._updates.append((query, params))
        self._idle.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every queued status change is committed."""
        if self._updates or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def _write_loop(self) -> None:
        db = self.store.db
        assert db is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._updates = self._updates, []
            if batch:
                try:
                    for query, params in batch:
                        await db.execute(self.store.q[query], params)
                    await db.commit()
                except Exception:  # keep the writer alive; the rows stay queued/running and replay
                    log.exception("journal write of %d updates failed", len(batch))
            if not self._updates:
                self._idle.set()

    # ---- reads --------------------------------------------------------------------------
    async def get(self, task_id: str) -> TaskRow | None:
        rows = await self.store.fetch("get_task", {"id": task_id})
        return rows[0] if rows else None

    async def cancel(self, task_id: str) -> bool:
        assert self.store.db is not None
        cur = await self.store.db.execute(self.store.q["cancel_task"], {"id": task_id, "finished_at": time.time()})
        await self.store.db.commit()
        return cur.rowcount > 0

    async def unfinished(self) -> list[TaskRow]:
        return await self.store.fetch("unfinished_tasks")

    async def list(
        self, tenant: str, fn: str | None, status: str | None, limit: int, after: tuple[float, str] | None
    ) -> list[TaskRow]:
        after_created, after_id = after or (float("inf"), "")
        return await self.store.fetch(
            "list_tasks",
            {
                "tenant": tenant,
                "fn": fn,
                "status": status,
                "limit": limit,
                "after_created": after_created,
                "after_id": after_id,
            },
        )

    async def purge(self, ttl_s: float) -> None:
        await self.store.execute("purge_tasks", {"before": time.time() - ttl_s})
