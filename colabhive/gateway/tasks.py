"""The async task routes: status, attempts, timings and result of a journaled call, cancel, list.

The calls themselves are made by the durable strategy (``durable.py``).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Request, Response, delete, get
from litestar.params import Parameter

from ..errors import Conflict, InvalidInput, NotFound, TaskFailed
from .hive import Hive
from .tenants import client_tenant

__all__ = ["cancel_task", "get_task", "list_tasks"]

JSON = "application/json"


def _view(row: dict[str, Any], with_result: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "fn": row["fn"],
        "status": row["status"],
        "attempts": json.loads(row.get("attempts") or "[]"),
        "node": row.get("node_id"),
        "created_at": row["created_at"],
        "started_at": row.get("started_at"),
        "finished_at": row.get("finished_at"),
        "run_ms": row.get("run_ms"),
        "energy_j": row.get("energy_j"),
        "energy_estimated": None if row.get("energy_j") is None else bool(row.get("energy_estimated")),
        "carbon_g": row.get("carbon_g"),
        "dtype": row.get("dtype"),
    }
    if with_result:
        if row.get("output") is not None:
            out["result"] = msgspec.Raw(bytes(row["output"]))
        if row.get("error"):
            out["error"] = json.loads(row["error"])
    return out


async def _row(hive: Hive, request: Request, task_id: str) -> dict[str, Any]:
    await client_tenant(hive, request)
    if len(task_id) > 64:
        raise NotFound(f"no task {task_id[:64]!r}…")
    await hive.journal.drain()  # read-your-writes: pending status changes land first
    row = await hive.journal.get(task_id)
    tenant = getattr(request.state, "tenant", "") or ""
    if row is None or row["tenant"] != tenant:
        raise NotFound(f"no task {task_id!r} (finished tasks are kept for {hive.cfg.limits.result_ttl_s:.0f} s)")
    return row


@get("/v1/tasks/{task_id:str}", tags=["tasks"], summary="An async task: status, attempts, timings, result")
async def get_task(task_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    row = await _row(hive, request, task_id)
    return Response(content=msgspec.json.encode(_view(row)), media_type=JSON)


@delete("/v1/tasks/{task_id:str}", tags=["tasks"], summary="Cancel an async task", status_code=200)
async def cancel_task(task_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    row = await _row(hive, request, task_id)
    if row["status"] not in ("queued", "running"):
        raise Conflict(f"task {task_id} already {row['status']}; nothing to cancel")
    hive.dispatcher.cancel(task_id)
    if (on_gateway := hive.gateway_tasks.pop(task_id, None)) is not None:  # an ensemble call
        on_gateway[1].cancel()
    await hive.journal.cancel(task_id)
    for fut in hive.watchers.pop(task_id, []):  # sync callers waiting on it by Idempotency-Key
        if not fut.done():
            fut.set_exception(TaskFailed(f"task {task_id} was cancelled"))
    row = await _row(hive, request, task_id)
    return Response(content=msgspec.json.encode(_view(row, with_result=False)), media_type=JSON)


@get("/v1/tasks", tags=["tasks"], summary="List async tasks, newest first (cursor-paginated)")
async def list_tasks(
    request: Request,
    fn: str | None = None,
    status: str | None = Parameter(default=None, pattern="^(queued|running|succeeded|failed|cancelled)$"),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    after = None
    if cursor:
        try:
            created, _, tid = cursor.partition(":")
            after = (float(created), tid)
        except ValueError:
            raise InvalidInput("cursor is not one this gateway issued", field="cursor") from None
    await hive.journal.drain()
    tenant = await client_tenant(hive, request)
    rows = await hive.journal.list(tenant, fn, status, limit, after)
    next_cursor = f"{rows[-1]['created_at']!r}:{rows[-1]['id']}" if len(rows) == limit else None
    return {"tasks": [_view(r, with_result=False) for r in rows], "next_cursor": next_cursor}
