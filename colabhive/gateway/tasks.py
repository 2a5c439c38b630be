"""Durable invocations: ``Prefer: respond-async`` (202 + /v1/tasks/{id}) and
``Idempotency-Key`` (the same key returns the same task, never a second execution).

The task row is committed before the 202 is sent, so a crash after the 202 loses
nothing: the gateway replays unfinished rows at start (see Hive._replay).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response, delete, get
from litestar.params import Parameter

from ..dispatch import Outcome, Task
from ..errors import Conflict, DeadlineExceeded, InvalidInput, NotFound, TaskFailed, TooManyRequests
from ..telemetry import context_from_traceparent, traceparent_of
from .hive import Hive, Reply
from .tenants import client_tenant

__all__ = ["cancel_task", "get_task", "invoke_durable", "list_tasks"]

JSON = "application/json"
MAX_KEY = 200


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
    }
    if with_result:
        if row.get("output") is not None:
            out["result"] = msgspec.Raw(bytes(row["output"]))
        if row.get("error"):
            out["error"] = json.loads(row["error"])
    return out


def _accepted(row: dict[str, Any], replayed: bool) -> Reply:
    headers = {"location": f"/v1/tasks/{row['id']}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    return Reply(202, msgspec.json.encode({"id": row["id"], "status": row["status"]}), headers)


async def invoke_durable(
    hive: Hive,
    name: str,
    body: bytes,
    headers: Mapping[str, str],
    tenant: str,
    *,
    respond_async: bool,
    timeout_s: float,
) -> Reply:
    key = headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY} characters", field="Idempotency-Key")
    if key is not None:  # a retry is answered even when the queue is full: it adds nothing to it
        existing = await hive.journal.find_idem(tenant, key)
        if existing is not None and (existing["fn"] != name or bytes(existing["input"]) != body):
            raise InvalidInput(
                "this Idempotency-Key was already used for a different request; use a new key",
                field="Idempotency-Key",
            )
        if existing is not None:
            return _accepted(existing, replayed=True) if respond_async else await _wait_durable(
                hive, existing, timeout_s
            )
    span = hive.tracer.start_span(
        f"invoke {name} (durable)", context=context_from_traceparent(headers.get("traceparent"))
    )
    try:
        with hive.dispatcher.reserve(name):  # the slot is held across the journal write
            ensemble = hive.catalog[name].manifest.ensemble is not None
            if ensemble and sum(fn == name for fn, _ in hive.gateway_tasks.values()) >= hive.queue_limit(name):
                raise TooManyRequests(f"{name!r} has {hive.queue_limit(name)} calls waiting; retry later",
                                      retry_after=1)
            row, created = await hive.journal.insert(name, body, tenant, key, traceparent_of(span))
            span.set_attribute("hive.task_id", row["id"])
            if created:
                from .functions import _prefer, record_route

                task = Task(fn=name, input=body, traceparent=row["traceparent"], id=row["id"], durable=True,
                            prefer=_prefer(headers))
                if ensemble:
                    from .ensembles import start_durable

                    start_durable(hive, hive.catalog[name], task, tenant)
                else:
                    hive.dispatcher.submit(task, force=True)
                    record_route(span, task)
    finally:
        span.end()
    if respond_async:
        return _accepted(row, replayed=not created)
    return await _wait_durable(hive, row, timeout_s)


async def _wait_durable(hive: Hive, row: dict[str, Any], timeout_s: float) -> Reply:
    """A sync call with an Idempotency-Key: wait on the one task that key names."""
    if row["status"] == "succeeded":
        return Reply(200, bytes(row["output"]), {"idempotent-replayed": "true"})
    if row["status"] in ("failed", "cancelled"):
        err = json.loads(row.get("error") or "{}")
        raise TaskFailed(err.get("message") or f"task {row['id']} was {row['status']}")
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Outcome] = loop.create_future()
    hive.watchers.setdefault(row["id"], []).append(fut)
    try:
        outcome = await asyncio.wait_for(fut, timeout_s)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(
            f"task {row['id']} is still running; the same Idempotency-Key returns its result later"
        ) from None
    if outcome.error is not None:
        raise outcome.error
    return Reply(200, outcome.output or b"null", {"x-hive-task": row["id"]})


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
