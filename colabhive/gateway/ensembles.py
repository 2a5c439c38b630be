"""Calling an ensemble: every member answers the same input, the declared rule combines them.

Each member is an ordinary plain call (``prepare`` then ``run_plain``): validated by its own schema, queued,
routed by the caller's preference and traced under the ensemble's span, so a member on a
far node is as visible as a direct call. Members that fail are listed with their error and
the rest are combined, as long as ``quorum`` of them answered; below that the call is a 502
naming every member's failure. The reply is the members' own output shape plus an
``ensemble`` object: the rule, the weights and where they came from, and each member's
version, node, time and answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from ..ensemble import EnsembleError, combine, weights_for
from ..dispatch import Outcome, Task
from ..errors import HiveError, InvalidInput, NoCapacity, TaskFailed, TooManyRequests
from ..telemetry import context_from_traceparent, traceparent_of
from .call import Call, prepare, result_headers
from .hive import FunctionEntry, Hive
from .plain import run_plain
from .transport import Reply

__all__ = ["combine_members", "run_ensemble", "start_durable"]

WAIT_S = 1.0
"""How often a journaled ensemble call that found too few members served looks again."""


async def run_ensemble(hive: Hive, call: Call) -> Reply:
    """The ensemble strategy: its members answer on the gateway's behalf, the rule combines them."""
    return await combine_members(hive, call.entry, call.body, _passed(call), call.tenant)


def _passed(call: Call) -> dict[str, str]:
    headers = {"x-timeout-ms": str(int(call.timeout_s * 1000))}
    if call.prefer is not None:
        headers["x-hive-prefer"] = call.prefer
    if call.traceparent is not None:
        headers["traceparent"] = call.traceparent
    return headers


async def combine_members(
    hive: Hive, entry: FunctionEntry, body: bytes, headers: Mapping[str, str], tenant: str
) -> Reply:
    spec = entry.manifest.ensemble
    assert spec is not None
    parent = context_from_traceparent(headers.get("traceparent"))
    span = hive.tracer.start_span(f"ensemble {entry.ref}", context=parent)
    # members get the caller's deadline and routing preference, under this span
    passed = {k: v for k in ("x-timeout-ms", "x-hive-prefer") if (v := headers.get(k)) is not None}
    passed["traceparent"] = traceparent_of(span)

    estimated: set[str] = set()

    async def one(member: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        row: dict[str, Any] = {"member": member}
        try:
            reply = await run_plain(hive, await prepare(hive, member, body, passed, tenant))
        except HiveError as exc:
            return row | {"status": "failed", "error": exc.to_body()["error"],
                          "ms": round((time.perf_counter() - t0) * 1000, 2)}
        h = reply.headers or {}
        row |= {"expert": h.get("x-hive-version", member), "status": "ok", "node": h.get("x-hive-node"),
                "ms": round((time.perf_counter() - t0) * 1000, 2), "output": msgspec.json.decode(reply.body)}
        for key, header in (("energy_j", "x-hive-energy-j"), ("carbon_g", "x-hive-carbon-g")):
            if header in h:
                row[key] = float(h[header])
        if h.get("x-hive-energy-estimated") == "true":
            estimated.add(member)
        return row

    try:
        rows = await asyncio.gather(*(one(m) for m in spec.members))
        ok = [r for r in rows if r["status"] == "ok"]
        refused = [r for r in rows if r["status"] != "ok" and r["error"]["code"] == "invalid_input"]
        if len(ok) < spec.quorum and refused:  # the caller's input, not the hive, is at fault
            err = refused[0]["error"]
            raise InvalidInput(f"{refused[0]['member']} (a member of {entry.ref}) refused the input: "
                               f"{err['message']}", field=err.get("field"))
        if len(ok) < spec.quorum:
            failures = "; ".join(f"{r['member']}: {r['error']['message']}" for r in rows if r["status"] != "ok")
            raise TaskFailed(f"{entry.ref}: only {len(ok)} of {len(rows)} members answered "
                             f"(quorum {spec.quorum}): {failures}")
        weights, why = _weights(hive, spec.combine, ok)
        try:
            out = combine(entry.manifest.task, spec.combine, [r["output"] for r in ok], weights)
        except EnsembleError as exc:
            raise TaskFailed(f"{entry.ref}: cannot combine its members' answers by {spec.combine}: {exc}") from None
        for r, w in zip(ok, _share(weights)):
            r["weight"] = round(w, 4)
        span.set_attribute("hive.ensemble.combine", spec.combine)
        span.set_attribute("hive.ensemble.answered", len(ok))
        span.set_attribute("hive.ensemble.members", [r.get("expert", r["member"]) for r in rows])
    finally:
        span.end()
    out["ensemble"] = {"combine": spec.combine, "weights_from": why, "answered": len(ok), "members": rows}
    # the ensemble's cost is what all of its members spent
    spent = {key: sum(r[key] for r in ok) if all(key in r for r in ok) else None for key in ("energy_j", "carbon_g")}
    headers = result_headers(entry.ref, ",".join(sorted({r["node"] for r in ok})), energy_j=spent["energy_j"],
                             carbon_g=spent["carbon_g"], energy_estimated=bool(estimated))
    return Reply(200, msgspec.json.encode(out), headers)


def _weights(hive: Hive, rule: str, ok: list[dict[str, Any]]) -> tuple[list[float], str]:
    if rule != "score_weighted":
        return [1.0] * len(ok), "equal (the rule is " + rule + ")"
    scores: list[tuple[float, bool] | None] = []
    for r in ok:
        ev = hive.evaluations.get(r["expert"])
        known = ev is not None and ev.get("score") is not None
        scores.append((float(ev["score"]), bool(ev["lower_is_better"])) if known and ev else None)
    return weights_for(scores)


def _share(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights] if total else weights


def start_durable(hive: Hive, entry: FunctionEntry, task: Task, tenant: str) -> None:
    """Run a journaled (async or Idempotency-Key) ensemble call on the gateway.

    Like a queued task it waits for capacity instead of failing fast: while too few members
    are served (or their queues are full) it looks again every ``WAIT_S``. Its journal row is
    the durable part: a gateway restart replays it here, and DELETE /v1/tasks/{id} cancels it.
    """
    run = asyncio.create_task(_run_durable(hive, entry, task, tenant), name=f"ensemble task {task.id}")
    hive.gateway_tasks[task.id] = (entry.ref, run)
    run.add_done_callback(lambda _: hive.gateway_tasks.pop(task.id, None))


async def _run_durable(hive: Hive, entry: FunctionEntry, task: Task, tenant: str) -> None:
    headers = {"traceparent": task.traceparent} | ({"x-hive-prefer": task.prefer} if task.prefer else {})
    while True:
        if hive.serving(entry.ref):
            hive.journal.running(task.id, "gateway", task.attempts)
            t0 = time.perf_counter()
            try:
                reply = await combine_members(hive, entry, task.input, headers, tenant)
            except (NoCapacity, TooManyRequests):
                pass  # a member went away or is full between the check and the call: wait
            except HiveError as exc:
                hive.finish_task(task, None, exc)
                return
            else:
                h = reply.headers or {}
                energy, carbon = h.get("x-hive-energy-j"), h.get("x-hive-carbon-g")
                hive.finish_task(task, Outcome(
                    output=reply.body, error=None, node_id=h.get("x-hive-node", ""), batch_size=1, queued_ms=0.0,
                    run_ms=(time.perf_counter() - t0) * 1000, energy_j=float(energy) if energy else None,
                    carbon_g=float(carbon) if carbon else None), None)
                return
        await asyncio.sleep(WAIT_S)
