"""A call, checked: the first half of the one invoke flow, shared by every strategy.

Every check that can fail (draining, the caller's key, the version, the input, the
deadline, ``X-Hive-Prefer``, ``Idempotency-Key``, capacity, queue room) runs in
:func:`prepare`, before any byte of the response exists, so a streamed call gets its
4xx/429/503 as a status line like any other call. The strategies (plain here; durable,
streamed and ensemble in their own modules) differ only in how they wait and answer, and
take their Task, span, log row and headers from the helpers below.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ..config import LimitsConfig
from ..dispatch import Outcome, Task
from ..errors import DeadlineExceeded, Forbidden, HiveError, InvalidInput, NoCapacity
from ..telemetry import context_from_traceparent, traceparent_of
from .errors import decode_input
from .hive import FunctionEntry, Hive
from .tenants import tenant_of

__all__ = [
    "Call", "Mode", "PREFERENCES", "close_task", "entry_for", "no_capacity", "open_task", "outcome_headers",
    "prepare", "record_route", "result_headers", "visible",
]

Mode = Literal["plain", "durable", "stream", "ensemble"]
PREFERENCES = ("fast", "green", "cheap", "balanced")
MAX_IDEMPOTENCY_KEY = 200


@dataclass(slots=True)
class Call:
    """A call that passed every check: what runs, for whom, under which deadline and mode."""

    entry: FunctionEntry
    body: bytes
    tenant: str
    timeout_s: float
    prefer: str | None
    traceparent: str | None
    """The caller's W3C traceparent (the call's span is its child)."""
    mode: Mode
    respond_async: bool = False
    idempotency_key: str | None = None

    @property
    def ref(self) -> str:
        return self.entry.ref


def visible(entry: FunctionEntry, tenant: str, hive: Hive) -> bool:
    m = entry.manifest
    return not hive.auth.require_keys or m.visibility == "public" or m.tenant == tenant


def entry_for(hive: Hive, name: str, tenant: str = "") -> FunctionEntry:
    """The version a call to ``name`` (or ``name@version``) runs, if the caller may see it."""
    entry = hive.resolve(name)
    if not visible(entry, tenant, hive):
        raise Forbidden(f"{name!r} is private to another tenant")
    return entry


def deadline_of(headers: Mapping[str, str], limits: LimitsConfig) -> float:
    """``X-Timeout-Ms`` in seconds (hive.toml's default when absent)."""
    raw = headers.get("x-timeout-ms")
    if raw is None:
        return limits.default_timeout_ms / 1000
    try:
        ms = float(raw)
    except ValueError:
        raise InvalidInput("X-Timeout-Ms must be a number of milliseconds", field="X-Timeout-Ms") from None
    if not 1 <= ms <= limits.max_timeout_ms:
        raise InvalidInput(f"X-Timeout-Ms must be between 1 and {limits.max_timeout_ms}", field="X-Timeout-Ms")
    return ms / 1000


def preference_of(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("x-hive-prefer")
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in PREFERENCES:
        raise InvalidInput(
            f"X-Hive-Prefer must be one of {', '.join(PREFERENCES)}, not {raw!r}", field="X-Hive-Prefer"
        )
    return value


def idempotency_key_of(headers: Mapping[str, str]) -> str | None:
    key = headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field="Idempotency-Key"
        )
    return key


def wants_stream(entry: FunctionEntry, inp: object, headers: Mapping[str, str]) -> bool:
    if not entry.runner.streams:
        return False
    return bool(getattr(inp, "stream", False)) or "text/event-stream" in headers.get("accept", "")


def no_capacity(hive: Hive, ref: str) -> NoCapacity:
    """Why nothing serves ``ref`` right now, as the 503 the caller gets."""
    if hive.nodes.loading(ref):
        return NoCapacity(f"{ref!r} is still loading on a node; retry in a few seconds", retry_after=2)
    live = hive.nodes.live()
    if not live:
        return NoCapacity(f"no node is connected to the hive, so nothing can serve {ref!r}", retry_after=5)
    reason = hive.current_plan().reasons.get(ref)
    if reason is not None:
        return NoCapacity(f"no node can host {ref!r}: {reason}", retry_after=30)
    return NoCapacity(
        f"none of the {len(live)} connected node(s) has {ref!r} loaded "
        "(its hardware needs may not fit any of them)",
        retry_after=5,
    )


async def prepare(
    hive: Hive, name: str, body: bytes, headers: Mapping[str, str], tenant: str | None = None,
    *, stream: bool | None = None,
) -> Call:
    """Every check a call can fail, in one place. ``tenant`` is given by the gateway's own
    callers (evaluations, ensembles, /auto) that authorised the request already; ``stream``
    forces the mode for routes that decide it themselves (the OpenAI chat route)."""
    if hive.draining:
        raise NoCapacity("this gateway is shutting down; retry in a moment", retry_after=5)
    if tenant is None:
        tenant = await tenant_of(hive, headers) if hive.auth.require_keys else ""
    entry = entry_for(hive, name, tenant)
    inp = decode_input(body, entry.input_type, entry.ref)
    timeout_s = deadline_of(headers, hive.cfg.limits)
    prefer = preference_of(headers)
    key = idempotency_key_of(headers)
    respond_async = "respond-async" in headers.get("prefer", "")
    ref = entry.ref
    mode: Mode
    if stream if stream is not None else wants_stream(entry, inp, headers):
        mode = "stream"
    elif respond_async or key is not None:
        mode = "durable"  # journaled: waits for a node (and for queue room) rather than failing fast
    elif entry.manifest.ensemble is not None:
        mode = "ensemble"
    else:
        mode = "plain"
    if mode in ("plain", "stream"):
        if not hive.nodes.serving(ref):
            raise no_capacity(hive, ref)
        hive.dispatcher.check_room(ref)
    elif mode == "ensemble" and not hive.serving(ref):
        spec = entry.manifest.ensemble
        assert spec is not None
        raise NoCapacity(
            f"{ref} needs {spec.quorum} of its members served ({', '.join(spec.members)}); "
            "too few are loaded on a node right now", retry_after=5)
    return Call(entry, body, tenant, timeout_s, prefer, headers.get("traceparent"), mode, respond_async, key)


def open_task(hive: Hive, call: Call, **attributes: Any) -> tuple[Task, Any]:
    """The call's one span and the one Task that carries it to a node."""
    span = hive.tracer.start_span(f"invoke {call.ref}", context=context_from_traceparent(call.traceparent))
    span.set_attribute("hive.mode", call.mode)
    for key, value in attributes.items():
        span.set_attribute(key, value)
    task = Task(fn=call.ref, input=call.body, traceparent=traceparent_of(span), prefer=call.prefer)
    task.deadline = task.enqueued_at + call.timeout_s
    return task, span


def close_task(
    hive: Hive, task: Task, span: Any, outcome: Outcome | None, error: HiveError | None, t0: float,
    *, status: str | None = None,
) -> None:
    """End the call's span and write its log row: the one place a call is accounted for."""
    err = error or (outcome.error if outcome is not None else None)
    if status is None:
        status = "timeout" if isinstance(err, DeadlineExceeded) else "failed" if err is not None else "succeeded"
    if span.is_recording():
        if outcome is not None:
            _queue_span(hive, task, span, outcome)
            span.set_attribute("hive.node", outcome.node_id)
            span.set_attribute("hive.batch_size", outcome.batch_size)
        if err is not None:
            span.set_attribute("error.code", err.code)
        if task.chunks is not None:
            span.set_attribute("hive.chunks", task.streamed)
        record_route(span, task)
    span.end()
    hive.store.log_invocation(
        id=task.id,
        fn=task.fn,
        node_id=outcome.node_id if outcome else task.node_id,
        status=status,
        error_code=err.code if err is not None else None,
        queued_ms=outcome.queued_ms if outcome else None,
        run_ms=outcome.run_ms if outcome else None,
        total_ms=(time.perf_counter() - t0) * 1000,
        batch_size=outcome.batch_size if outcome else (1 if task.chunks is not None else None),
        trace_id=task.traceparent[3:35] or None,
    )


def record_route(span: Any, task: Task) -> None:
    """The routing decision and every input of it, on the task's span."""
    route = task.route
    if not route:
        return
    span.set_attribute("hive.route.prefer", route["prefer"])
    span.set_attribute("hive.route.node", route["node"])
    span.set_attribute("hive.route.candidates", route["candidates"])
    if "cost" in route:
        span.set_attribute("hive.route.cost", route["cost"])
        span.set_attribute("hive.route.terms", msgspec.json.encode(route["terms"]).decode())


def _queue_span(hive: Hive, task: Task, parent: Any, outcome: Outcome) -> None:
    from opentelemetry import trace

    # the queue wait happened between enqueue and hand-out; record it with those bounds
    start_ns = time.time_ns() - int((time.monotonic() - task.enqueued_at) * 1e9)
    end_ns = start_ns + int(outcome.queued_ms * 1e6)
    q = hive.tracer.start_span("queue.wait", context=trace.set_span_in_context(parent), start_time=start_ns)
    q.set_attribute("hive.fn", task.fn)
    q.set_attribute("hive.attempts", len(task.attempts))
    q.end(end_time=end_ns)


def result_headers(
    ref: str, node_id: str | None, *, batch_size: int | None = None, energy_j: float | None = None,
    energy_estimated: bool = False, carbon_g: float | None = None, dtype: str = "", **extra: str,
) -> dict[str, str]:
    """What every successful answer says about itself, whichever strategy produced it."""
    headers = {"x-hive-version": ref}
    if node_id:
        headers["x-hive-node"] = node_id
    if dtype:
        headers["x-hive-dtype"] = dtype
    if batch_size is not None:
        headers["x-hive-batch"] = str(batch_size)
    if energy_j is not None:  # what this call cost, measured (or estimated, and flagged) on the node
        headers["x-hive-energy-j"] = f"{energy_j:.6g}"
        headers["x-hive-energy-estimated"] = "true" if energy_estimated else "false"
    if carbon_g is not None:
        headers["x-hive-carbon-g"] = f"{carbon_g:.6g}"
    return headers | extra


def outcome_headers(ref: str, outcome: Outcome, **extra: str) -> dict[str, str]:
    return result_headers(
        ref, outcome.node_id, batch_size=outcome.batch_size, energy_j=outcome.energy_j,
        energy_estimated=outcome.energy_estimated, carbon_g=outcome.carbon_g, dtype=outcome.dtype, **extra,
    )
