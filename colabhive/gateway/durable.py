"""The durable strategy: ``Prefer: respond-async`` (202 + /v1/tasks/{id}) and
``Idempotency-Key`` (the same key returns the same task, never a second execution).

The task row is committed before the 202 is sent, so a crash after the 202 loses
nothing: :func:`replay` puts unfinished rows back at start. A durable call waits for a
node (and for queue room) instead of failing fast, so unlike the plain strategy it is
not refused for capacity in ``prepare``; its queue slot is held across the journal write.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec

from ..dispatch import Outcome, Task
from ..errors import DeadlineExceeded, InvalidInput, TaskFailed, TooManyRequests
from .call import Call, open_task, outcome_headers, record_route, result_headers
from .ensembles import start_durable
from .hive import Hive
from .transport import Reply

__all__ = ["replay", "run_durable"]


def _accepted(row: dict[str, Any], replayed: bool) -> Reply:
    headers = {"location": f"/v1/tasks/{row['id']}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    return Reply(202, msgspec.json.encode({"id": row["id"], "status": row["status"]}), headers)


async def run_durable(hive: Hive, call: Call) -> Reply:
    name, key, tenant = call.ref, call.idempotency_key, call.tenant
    if key is not None:  # a retry is answered even when the queue is full: it adds nothing to it
        existing = await hive.journal.find_idem(tenant, key)
        if existing is not None and (existing["fn"] != name or bytes(existing["input"]) != call.body):
            raise InvalidInput(
                "this Idempotency-Key was already used for a different request; use a new key",
                field="Idempotency-Key",
            )
        if existing is not None:
            return _accepted(existing, replayed=True) if call.respond_async else await _wait(hive, existing, call)
    task, span = open_task(hive, call)
    try:
        with hive.dispatcher.reserve(name):  # the slot is held across the journal write
            ensemble = call.entry.manifest.ensemble is not None
            if ensemble and sum(fn == name for fn, _ in hive.gateway_tasks.values()) >= hive.queue_limit(name):
                raise TooManyRequests(f"{name!r} has {hive.queue_limit(name)} calls waiting; retry later",
                                      retry_after=1)
            row, created = await hive.journal.insert(name, call.body, tenant, key, task.traceparent)
            span.set_attribute("hive.task_id", row["id"])
            if created:
                task.id, task.durable, task.deadline = row["id"], True, 0.0
                if ensemble:
                    start_durable(hive, call.entry, task, tenant)
                else:
                    hive.dispatcher.submit(task, force=True)
                    record_route(span, task)
    finally:
        span.end()
    if call.respond_async:
        return _accepted(row, replayed=not created)
    return await _wait(hive, row, call)


async def _wait(hive: Hive, row: dict[str, Any], call: Call) -> Reply:
    """A sync call with an Idempotency-Key: wait on the one task that key names."""
    task_id = row["id"]
    if row["status"] == "succeeded":
        energy = row.get("energy_j")
        headers = result_headers(
            row["fn"], row.get("node_id"), energy_j=energy, energy_estimated=bool(row.get("energy_estimated")),
            carbon_g=row.get("carbon_g"), dtype=row.get("dtype") or "",
            **{"x-hive-task": task_id, "idempotent-replayed": "true"},
        )
        return Reply(200, bytes(row["output"]), headers)
    if row["status"] in ("failed", "cancelled"):
        err = json.loads(row.get("error") or "{}")
        raise TaskFailed(err.get("message") or f"task {task_id} was {row['status']}")
    fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    hive.watchers.setdefault(task_id, []).append(fut)
    try:
        outcome = await asyncio.wait_for(fut, call.timeout_s)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(
            f"task {task_id} is still running; the same Idempotency-Key returns its result later"
        ) from None
    if outcome.error is not None:
        raise outcome.error
    return Reply(200, outcome.output or b"null", outcome_headers(row["fn"], outcome, **{"x-hive-task": task_id}))


async def replay(hive: Hive) -> int:
    """Put every unfinished async task back on its queue (after a restart or a crash)."""
    rows = await hive.journal.unfinished()
    for row in rows:
        if row["fn"] not in hive.catalog and "@" not in row["fn"] and row["fn"] in hive.lifecycle.names:
            row["fn"] = hive.lifecycle.default_ref(row["fn"]) or row["fn"]  # journaled before versioning
        if row["fn"] not in hive.catalog:
            hive.journal.finish(
                row["id"], "failed", error={"code": "unknown_function", "message": f"{row['fn']} left the catalog"}
            )
            continue
        task = Task(
            fn=row["fn"],
            input=bytes(row["input"]),
            traceparent=row["traceparent"],
            id=row["id"],
            attempts=json.loads(row["attempts"] or "[]"),
            durable=True,
        )
        entry = hive.catalog[row["fn"]]
        if entry.manifest.ensemble is not None:
            start_durable(hive, entry, task, row["tenant"])
        else:
            hive.dispatcher.submit(task, force=True)
    return len(rows)
