"""Client-facing function routes: the catalog, one function's description, and invoke.

Invoke is the hot path: look the function up, validate the body against its input
Struct (422 naming the field), check a node serves it (503 at once, never a hang),
queue the task and await its outcome under the caller's deadline (504).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Stream
from litestar.params import Parameter

from ..dispatch import Outcome, Task
from ..errors import DeadlineExceeded, Forbidden, InvalidInput, NoCapacity, UnknownFunction
from ..telemetry import context_from_traceparent, traceparent_of
from .errors import decode_input
from .hive import FunctionEntry, Hive, Reply
from .streaming import sse, stream_events, wants_stream
from .tasks import invoke_durable
from .tenants import client_tenant, tenant_of

__all__ = ["describe_function", "invoke", "invoke_core", "list_functions"]

JSON = "application/json"
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _visible(entry: FunctionEntry, tenant: str, hive: Hive) -> bool:
    m = entry.manifest
    return not hive.auth.require_keys or m.visibility == "public" or m.tenant == tenant


def _entry(hive: Hive, name: str, tenant: str = "") -> FunctionEntry:
    """The version a call to ``name`` (or ``name@version``) runs, if the caller may see it."""
    entry = hive.resolve(name)
    if not _visible(entry, tenant, hive):
        raise Forbidden(f"{name!r} is private to another tenant")
    return entry


def _version_summary(hive: Hive, entry: FunctionEntry) -> dict[str, Any]:
    m, ref = entry.manifest, entry.ref
    live = hive.registry.live()
    held = hive.member_refs(entry) if m.ensemble is not None else [ref]  # an ensemble runs where its members do
    out = {
        "version": m.version,
        "ref": ref,
        "lifecycle": hive.lifecycle.state(ref),
        "artifact": msgspec.to_builtins(entry.artifact),
        "evaluation": hive.evaluations.get(ref),
        "eval_spec": msgspec.to_builtins(m.eval) if m.eval else None,
        "nodes": [n.id for n in live if any(r in n.functions for r in held)],
        "loading_on": [n.id for n in live if any(r in n.loading for r in held)],
        "queue_depth": hive.dispatcher.depth(ref) if m.ensemble is None  # an ensemble's wait on the gateway
        else sum(fn == ref for fn, _ in hive.gateway_tasks.values()),
    }
    if m.ensemble is not None:
        out["ensemble"] = msgspec.to_builtins(m.ensemble) | {"running": held}
    return out


def _summary(hive: Hive, name: str, tenant: str) -> dict[str, Any] | None:
    """One function: what its default version is and does, plus every version's state."""
    refs = hive.lifecycle.names.get(name, [])
    entries = [hive.catalog[r] for r in refs if _visible(hive.catalog[r], tenant, hive)]
    if not entries:
        return None
    default = hive.lifecycle.default_ref(name)
    head = hive.catalog[default] if default else entries[-1]
    m = head.manifest
    versions = [_version_summary(hive, e) for e in entries]
    nodes = sorted({n for v in versions if v["lifecycle"] != "retired" for n in v["nodes"]})
    out = {
        "name": name,
        "version": m.version,
        "default": default,
        "preferred": hive.lifecycle.preferred(name),
        "task": m.task,
        "description": m.description,
        "lifecycle": hive.lifecycle.state(head.ref),
        "domains": m.domains,
        "languages": m.languages,
        "examples": m.examples,
        "hardware": msgspec.to_builtins(m.hardware) if m.ensemble is None else None,  # its members' apply
        "batching": msgspec.to_builtins(m.batching),
        "ready": bool(default) and hive.serving(default),
        "nodes": nodes,
        "loading_on": sorted({n for v in versions for n in v["loading_on"]}),
        "queue_depth": sum(v["queue_depth"] for v in versions),
        "evaluation": hive.evaluations.get(head.ref),
        "versions": versions,
    }
    if m.ensemble is not None:
        out["ensemble"] = msgspec.to_builtins(m.ensemble)
    return out


@get("/v1/fn", summary="The function catalog: every function, its versions, states, scores and nodes",
     tags=["functions"])
async def list_functions(request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    out = [s for name in hive.lifecycle.names if (s := _summary(hive, name, tenant)) is not None]
    return {"functions": out}


@get(
    "/v1/fn/{name:str}",
    summary="One function (or name@version): manifest, versions, input and output JSON Schema",
    tags=["functions"],
)
async def describe_function(name: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    base = name.split("@", 1)[0]
    if "@" in name or hive.lifecycle.default_ref(name) is not None:
        entry = _entry(hive, name, tenant)
    else:  # nothing promoted yet: describe its newest version rather than refuse
        refs = hive.lifecycle.names.get(name)
        if not refs:
            raise UnknownFunction(f"no function named {name!r}; GET /v1/fn lists the catalog")
        entry = hive.catalog[refs[-1]]
        if not _visible(entry, tenant, hive):
            raise Forbidden(f"{name!r} is private to another tenant")
    out = _summary(hive, base, tenant) or {}
    if "@" in name:
        out.update(_version_summary(hive, entry))
        out["ready"] = hive.serving(entry.ref)
    out["manifest"] = msgspec.to_builtins(entry.manifest)
    out.update(hive.schemas(entry))
    return out


def _timeout_s(headers: Mapping[str, str], hive: Hive) -> float:
    raw = headers.get("x-timeout-ms")
    limits = hive.cfg.limits
    if raw is None:
        return limits.default_timeout_ms / 1000
    try:
        ms = float(raw)
    except ValueError:
        raise InvalidInput("X-Timeout-Ms must be a number of milliseconds", field="X-Timeout-Ms") from None
    if not 1 <= ms <= limits.max_timeout_ms:
        raise InvalidInput(
            f"X-Timeout-Ms must be between 1 and {limits.max_timeout_ms}", field="X-Timeout-Ms"
        )
    return ms / 1000


PREFERENCES = ("fast", "green", "cheap", "balanced")


def _prefer(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("x-hive-prefer")
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in PREFERENCES:
        raise InvalidInput(
            f"X-Hive-Prefer must be one of {', '.join(PREFERENCES)}, not {raw!r}", field="X-Hive-Prefer"
        )
    return value


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


def _no_capacity(hive: Hive, name: str) -> NoCapacity:
    if hive.registry.loading(name):
        return NoCapacity(f"{name!r} is still loading on a node; retry in a few seconds", retry_after=2)
    live = hive.registry.live()
    if not live:
        return NoCapacity(f"no node is connected to the hive, so nothing can serve {name!r}", retry_after=5)
    reason = hive.current_plan().reasons.get(name)
    if reason is not None:
        return NoCapacity(f"no node can host {name!r}: {reason}", retry_after=30)
    return NoCapacity(
        f"none of the {len(live)} connected node(s) has {name!r} loaded "
        "(its hardware needs may not fit any of them)",
        retry_after=5,
    )


def _expire(task: Task) -> None:
    if task.future is not None and not task.future.done():
        task.future.set_exception(DeadlineExceeded(f"{task.fn} did not answer within its deadline"))


@post(
    "/v1/fn/{name:str}",
    summary="Invoke a function and wait for its output",
    description=(
        "The body is the function's input object (its JSON Schema is at GET /v1/fn/{name}). Headers: "
        "X-Timeout-Ms (deadline), Prefer: respond-async (202 + /v1/tasks/{id}), Idempotency-Key, traceparent."
    ),
    tags=["functions"],
    status_code=200,
)
async def invoke(
    name: str,
    request: Request,
    x_timeout_ms: str | None = Parameter(header="x-timeout-ms", required=False, default=None),
) -> Response:
    """The documented route; the ASGI fast path (fastpath.py) calls invoke_core directly."""
    hive: Hive = request.app.state.hive
    body = await request.body() if not hive.draining else b""
    reply = await invoke_core(hive, name, body, request.headers)
    if reply.stream is not None:
        return Stream(reply.stream, media_type="text/event-stream", headers=_SSE_HEADERS | (reply.headers or {}))
    return Response(content=reply.body, status_code=reply.status, media_type=JSON, headers=reply.headers)


async def invoke_core(
    hive: Hive, name: str, body: bytes, headers: Mapping[str, str], tenant: str | None = None
) -> Reply:
    """``tenant`` is given by the gateway's own callers (evaluations, /auto) that have
    already authorised the request; client calls leave it None and are checked here."""
    if hive.draining:
        raise NoCapacity("this gateway is shutting down; retry in a moment", retry_after=5)
    if tenant is None:
        tenant = await tenant_of(hive, headers) if hive.auth.require_keys else ""
    entry = _entry(hive, name, tenant)
    name = entry.ref  # from here on the task is for this exact version
    inp = decode_input(body, entry.input_type, name)
    if wants_stream(entry, inp, headers):
        if not hive.registry.serving(name):  # only a model streams, never an ensemble
            raise _no_capacity(hive, name)
        events = stream_events(hive, entry, body, headers, _timeout_s(headers, hive))
        return Reply(200, b"", {"x-hive-version": name}, stream=sse(events))
    respond_async = "respond-async" in headers.get("prefer", "")
    if respond_async or "idempotency-key" in headers:
        # durable path: journaled, survives restarts, waits for a node rather than failing fast
        return await invoke_durable(
            hive, name, body, headers, tenant, respond_async=respond_async, timeout_s=_timeout_s(headers, hive)
        )
    if entry.manifest.ensemble is not None:  # its members are called from the gateway
        from .ensembles import invoke_ensemble

        return await invoke_ensemble(hive, entry, body, headers, tenant)
    if not hive.registry.serving(name):  # a plain version: some node holds it
        raise _no_capacity(hive, name)
    timeout = _timeout_s(headers, hive)
    prefer = _prefer(headers)

    loop = asyncio.get_running_loop()
    span = hive.tracer.start_span(f"invoke {name}", context=context_from_traceparent(headers.get("traceparent")))
    task = Task(fn=name, input=body, traceparent=traceparent_of(span), future=loop.create_future(), prefer=prefer)
    task.deadline = task.enqueued_at + timeout
    t0 = time.perf_counter()
    try:
        hive.dispatcher.submit(task)
        hive.sync_in_flight += 1
        handle = loop.call_later(timeout, _expire, task)
        try:
            outcome: Outcome = await task.future
        finally:
            handle.cancel()
            hive.sync_in_flight -= 1
    except DeadlineExceeded as exc:
        hive.dispatcher.withdraw(task)
        _record(hive, task, None, "timeout", exc.code, t0)
        span.set_attribute("error.code", exc.code)
        span.end()
        raise
    except Exception as exc:
        _record(hive, task, None, "failed", getattr(exc, "code", "internal"), t0)
        span.end()
        raise
    if span.is_recording():
        _queue_span(hive, task, span, outcome)
        span.set_attribute("hive.node", outcome.node_id)
        span.set_attribute("hive.batch_size", outcome.batch_size)
        record_route(span, task)
    span.end()
    if outcome.error is not None:
        _record(hive, task, outcome, "failed", outcome.error.code, t0)
        raise outcome.error
    _record(hive, task, outcome, "succeeded", None, t0)
    headers = {"x-hive-node": outcome.node_id, "x-hive-batch": str(outcome.batch_size), "x-hive-version": name}
    if outcome.energy_j is not None:  # what this call cost, measured (or estimated, and flagged) on the node
        headers["x-hive-energy-j"] = f"{outcome.energy_j:.6g}"
        headers["x-hive-energy-estimated"] = "true" if outcome.energy_estimated else "false"
    if outcome.carbon_g is not None:
        headers["x-hive-carbon-g"] = f"{outcome.carbon_g:.6g}"
    return Reply(200, outcome.output or b"null", headers)


def _queue_span(hive: Hive, task: Task, parent: Any, outcome: Outcome) -> None:
    from opentelemetry import trace

    # the queue wait happened between enqueue and hand-out; record it with those bounds
    start_ns = time.time_ns() - int((time.monotonic() - task.enqueued_at) * 1e9)
    end_ns = start_ns + int(outcome.queued_ms * 1e6)
    q = hive.tracer.start_span(
        "queue.wait", context=trace.set_span_in_context(parent), start_time=start_ns
    )
    q.set_attribute("hive.fn", task.fn)
    q.set_attribute("hive.attempts", len(task.attempts))
    q.end(end_time=end_ns)


def _record(hive: Hive, task: Task, outcome: Outcome | None, status: str, code: str | None, t0: float) -> None:
    hive.store.log_invocation(
        id=task.id,
        fn=task.fn,
        node_id=outcome.node_id if outcome else task.node_id,
        status=status,
        error_code=code,
        queued_ms=outcome.queued_ms if outcome else None,
        run_ms=outcome.run_ms if outcome else None,
        total_ms=(time.perf_counter() - t0) * 1000,
        batch_size=outcome.batch_size if outcome else None,
        trace_id=task.traceparent[3:35] or None,
    )
