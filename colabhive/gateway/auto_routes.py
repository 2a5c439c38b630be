"""``POST /v1/auto``: describe a problem, get one answer from the right experts.

The request is split into parts, each part's expert is chosen (``colabhive/auto``), and
the parts run concurrently as ordinary calls. ``?dry_run=true`` returns the plan alone.
With ``Accept: text/event-stream`` the plan comes first, then each part as it finishes,
then the merged answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from msgspec import Meta

from ..auto.experts import ExpertIndex
from ..auto.orchestrate import PlannedPart, plan_request, run_parts
from ..errors import HiveError, InvalidInput, NoCapacity
from ..families import RouterRole, TaskFamily, family, with_role
from ..telemetry import context_from_traceparent, traceparent_of
from .errors import decode_input
from .call import visible
from .invoke import call_function
from .hive import Hive
from .tenants import client_tenant
from .transport import PieceStream, Reply, ReplyResponse

__all__ = ["auto", "warm_router"]

log = logging.getLogger("colabhive.auto")
_CALL_HEADERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("auto_headers", default=None)
"""The headers (traceparent, preference, deadline) of the /v1/auto call being planned."""
EMBED_CACHE = 4096
"""Vectors kept per gateway (catalog texts and recent requests), least recently used out first."""

MAX_PARTS = 16
ROUTING = {"fast": "fast", "green": "green", "cheap": "cheap", "best": "fast"}


class AutoRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    input: Annotated[str, Meta(min_length=1, max_length=20_000)] | None = None
    parts: Annotated[list[str | dict[str, Any]], Meta(min_length=1, max_length=MAX_PARTS)] | None = None
    prefer: Literal["fast", "green", "cheap", "best"] | None = None
    budget_ms: Annotated[int, Meta(ge=1, le=600_000)] | None = None


def _of_role(hive: Hive, role: RouterRole) -> list[str]:
    """Default versions of the functions whose family plays ``role`` for the router."""
    tasks = {f.name for f in with_role(role)}
    refs = [hive.lifecycle.default_ref(n) for n in hive.lifecycle.names]
    return [r for r in refs if r and hive.catalog[r].manifest.task in tasks]


def _family(hive: Hive, ref: str) -> TaskFamily:
    return family(hive.catalog[ref].manifest.task)


def _embedder(hive: Hive) -> str:
    emb = _of_role(hive, "embedder")
    emb.sort(key=lambda r: (not r.startswith("minilm-embed@"), r))
    served = [r for r in emb if hive.serving(r)]
    if not served:
        raise NoCapacity(
            f"/auto embeds requests with the catalog's embedding function ({', '.join(emb) or 'none declared'}), "
            "which no node serves right now", retry_after=5)
    return served[0]


def _index(hive: Hive, tenant: str, headers: Mapping[str, str]) -> ExpertIndex:
    key = (hive.lifecycle.generation, tenant)
    cached = hive.auto_index
    if cached is not None and cached[0] == key:
        return cached[1]
    experts = []
    for name in hive.lifecycle.names:
        ref = hive.lifecycle.default_ref(name)
        if ref and visible(hive.catalog[ref], tenant, hive):
            experts.append(hive.catalog[ref].manifest)
    embedder = _embedder(hive)
    emb_family = _family(hive, embedder)

    cache = hive.auto_vectors

    async def embed(texts: list[str]) -> list[list[float]]:
        """Through the hive, like any call; a text embedded before (the catalog's, a repeated
        request) comes from the gateway's cache, shared by every tenant's index."""
        missing = list(dict.fromkeys(t[:2000] for t in texts if t[:2000] not in cache))
        bodies = [msgspec.json.encode(emb_family.text_body(t)) for t in missing]
        now = _CALL_HEADERS.get() or headers  # this request's trace, not the one that built the index
        replies = await asyncio.gather(*(call_function(hive, embedder, b, now, tenant) for b in bodies))
        for t, r in zip(missing, replies):
            cache[t] = emb_family.vector_of(msgspec.json.decode(r.body))
        out = []
        for t in texts:
            cache.move_to_end(t[:2000])
            out.append(cache[t[:2000]])
        while len(cache) > EMBED_CACHE:
            cache.popitem(last=False)
        return out

    langid = next(iter(_of_role(hive, "language_id")), None)

    async def language(text: str) -> str | None:
        if langid is None or not hive.serving(langid):
            return None
        lang_family = _family(hive, langid)
        try:
            reply = await call_function(hive, langid, msgspec.json.encode(lang_family.text_body(text[:2000])),
                                        _CALL_HEADERS.get() or headers, tenant)
        except HiveError:
            return None  # the direction then comes from the text's own hints
        return lang_family.language_of(msgspec.json.decode(reply.body))

    def quality(ref: str) -> float | None:
        ev = hive.evaluations.get(ref)
        if not ev or ev.get("score") is None:
            return None
        score = float(ev["score"])
        return -score if ev.get("lower_is_better") else score / 100 if ev.get("metric") == "chrf" else score

    index = ExpertIndex(experts, embed, hive.serving, language, quality, router=hive.auto_router)
    hive.auto_index = (key, index)
    return index


def _slot(p: PlannedPart) -> dict[str, Any]:
    out: dict[str, Any] = {"index": p.index, "expert": p.expert, "task": p.task, "status": p.status}
    if p.status == "ok":
        out["output"] = p.output
    elif p.error is not None:
        out["error"] = p.error
    return out


def _plan_doc(parts: list[PlannedPart], trace_id: str, prefer: str, dry_run: bool, t0: float) -> dict[str, Any]:
    return {"parts": [msgspec.to_builtins(p) | {"output": None} for p in parts], "trace_id": trace_id,
            "prefer": prefer, "dry_run": dry_run, "ms": round((time.perf_counter() - t0) * 1000, 2)}


@post("/v1/auto", tags=["auto"], status_code=200,
      summary="One request, many experts: classify, split, route, run in parallel, merge (dry_run: the plan only)")
async def auto(request: Request, dry_run: bool = False) -> Response:
    hive: Hive = request.app.state.hive
    t0 = time.perf_counter()
    tenant = await client_tenant(hive, request)
    req = decode_input(await request.body(), AutoRequest, "auto")
    if (req.input is None) == (req.parts is None):
        raise InvalidInput("give exactly one of `input` (free text) or `parts` (a list)", field="input")
    prefer = req.prefer or "fast"
    span = hive.tracer.start_span("auto", context=context_from_traceparent(request.headers.get("traceparent")))
    tp = traceparent_of(span)
    headers = {"traceparent": tp, "x-hive-prefer": ROUTING[prefer]}
    if req.budget_ms is not None:
        headers["x-timeout-ms"] = str(req.budget_ms)
    trace_id = tp[3:35]
    _CALL_HEADERS.set(headers)
    try:
        index = _index(hive, tenant, headers)
        try:
            planned = await plan_request(index, req.input, req.parts, hive.cfg.limits.max_auto_parts)
        except LookupError as exc:
            raise InvalidInput(str(exc), field="input") from None
        span.set_attribute("hive.auto.parts", len(planned))
        span.set_attribute("hive.auto.experts", ",".join(p.expert for p in planned))
    except BaseException:
        span.end()
        raise
    if dry_run:
        span.end()
        return Response(content=msgspec.json.encode({"plan": _plan_doc(planned, trace_id, prefer, True, t0)}),
                        media_type="application/json")

    async def invoke(ref: str, body: bytes, _: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        reply = await call_function(hive, ref, body, headers, tenant)
        return reply.body, reply.headers or {}

    if "text/event-stream" in request.headers.get("accept", ""):
        events = PieceStream(_events(planned, invoke, trace_id, prefer, t0), cleanup=span.end)
        return ReplyResponse(Reply(200, b"", stream=events))
    try:
        async for _ in run_parts(planned, invoke):
            pass
    finally:
        span.end()
    doc = {"output": [_slot(p) for p in planned], "plan": _plan_doc(planned, trace_id, prefer, False, t0)}
    return Response(content=msgspec.json.encode(doc), media_type="application/json")


async def _events(planned: list[PlannedPart], invoke: Any, trace_id: str, prefer: str,
                  t0: float) -> AsyncIterator[bytes]:
    def frame(event: str, data: Any) -> bytes:
        return b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"

    try:
        yield frame("plan", _plan_doc(planned, trace_id, prefer, False, t0))
        async for p in run_parts(planned, invoke):
            yield frame("part", _slot(p) | {"ms": p.ms, "node": p.node})
        yield frame("done", {"output": [_slot(p) for p in planned],
                             "plan": _plan_doc(planned, trace_id, prefer, False, t0)})
    except HiveError as exc:
        yield frame("error", exc.to_body())


async def warm_router(hive: Hive, poll_s: float = 0.5) -> None:
    """Embed the catalog's texts as soon as a node serves the embedding function, so the first
    /v1/auto call costs what the others do (it took 7.8 s cold). Runs once per catalog
    generation; a failure is logged and retried at the next change."""
    done = -1
    while True:
        try:
            gen = hive.lifecycle.generation
            if gen != done and any(hive.serving(r) for r in _of_role(hive, "embedder")):
                t0 = time.perf_counter()
                index = _index(hive, "", {})
                await index.warm()
                await index.embed(["warm up the request path"])
                done = gen
                log.info("/auto router warm: %d experts embedded in %.1f s (%s)", len(index.experts),
                         time.perf_counter() - t0,
                         f"learned router: {index.router.describe()}" if index.router else "nearest example")
        except HiveError as exc:
            log.warning("/auto warm-up failed, retrying: %s", exc.message)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a warm-up must never take the gateway down
            log.exception("/auto warm-up failed")
        await asyncio.sleep(poll_s)
