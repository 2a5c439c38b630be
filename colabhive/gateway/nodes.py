"""Node-facing routes. Nodes only ever call out: register, long-poll (carrying the
results of their last batch), post results, heartbeat, leave. The gateway never dials
a node."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post

from .. import __version__
from ..auth import bearer, digest, new_secret
from ..errors import Forbidden, InvalidInput, NotFound, Unauthorized, UnknownNode
from ..wire import Calibration, Chunk, ChunkBatch, Heartbeat, HeartbeatReply, PollReply, PollRequest, RegisterReply, RegisterRequest
from .errors import decode_input
from .hive import Hive
from .sites import site_for
from .tenants import client_tenant
from .transport import Reply

__all__ = [
    "authenticate_node", "calibrate_node", "heartbeat", "leave", "list_nodes", "poll_core",
    "post_calibration", "post_chunk", "post_chunks", "post_results", "register",
]

NODE_BODY_LIMIT = 64 * 1024 * 1024  # a batch of results can be large; clients stay at hive.toml's limit
JSON = "application/json"
_poll_reply = msgspec.json.Encoder()


def authenticate_node(hive: Hive, node_id: str, headers: Mapping[str, str]):  # -> NodeRecord
    rec = hive.nodes.get(node_id)
    if rec is None:
        raise UnknownNode(f"node {node_id!r} is not registered (the gateway may have restarted); register again")
    secret = bearer(headers.get("authorization"))
    if secret is None or not hmac.compare_digest(digest(secret), rec.secret_hash):
        raise Unauthorized("this node's credential is missing or wrong; register again")
    rec.last_seen = time.monotonic()
    return rec


@post("/v1/nodes/register", tags=["nodes"], request_max_body_size=NODE_BODY_LIMIT, status_code=200)
async def register(request: Request) -> Response:
    hive: Hive = request.app.state.hive
    # credentials first: an unauthenticated caller never gets the gateway to read a large body
    if not await hive.auth.joining_allowed(bearer(request.headers.get("authorization"))):
        raise Unauthorized("this hive needs a join token: colabhive token create, then node join_token")
    req = decode_input(await request.body(), RegisterRequest, "register")
    profile = site_for(hive.sites, req.site)  # 422 on a site this hive has no profile for
    rec = hive.nodes.add(req.name, req.site, req.host, req.devices, site_profile=profile)
    rec.allowed = req.allowed
    hive.sync_placement()  # the newcomer's share of the plan (others keep theirs)
    secret = new_secret("chn")
    rec.secret_hash = digest(secret)
    now = time.time()
    await hive.store.execute(
        "upsert_node",
        {
            "id": rec.id,
            "name": rec.name,
            "site": rec.site,
            "host": rec.host,
            "devices": msgspec.json.encode(req.devices).decode(),
            "now": now,
        },
    )
    cfg = hive.cfg
    reply = RegisterReply(
        node_id=rec.id,
        node_secret=secret,
        heartbeat_s=cfg.node.heartbeat_s,
        poll_wait_ms=cfg.node.poll_wait_ms,
        lease_s=cfg.limits.lease_s,
        manifests=[msgspec.Raw(m) for m in hive.manifests_for_nodes()],
        hosting=rec.hosting_news(),
        catalog=hive.catalog_generation,
    )
    return Response(content=msgspec.json.encode(reply), media_type=JSON)


def _on_disconnect(hive: Hive, rec: Any, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled() or fut.exception() is not None:
        return
    if fut.result().get("type") == "http.disconnect" and not rec.gone:
        rec.gone = True
        hive.dispatcher.reap(time.monotonic())


def _apply_results(hive: Hive, rec: Any, req: PollRequest) -> None:
    complete = hive.dispatcher.complete
    for r in req.results:
        complete(rec, r)
    if req.results:
        rec.batches += 1


async def poll_core(
    hive: Hive,
    node_id: str,
    body: bytes,
    headers: Mapping[str, str],
    receive: Callable[[], Awaitable[Any]],
) -> Reply:
    """``receive`` is the ASGI receive channel: it yields http.disconnect when the node's
    connection drops, which the poll watches for while it waits."""
    rec = authenticate_node(hive, node_id, headers)
    req = decode_input(body, PollRequest, "poll")
    _apply_results(hive, rec, req)
    hive.sync_placement()
    fns = frozenset(f for f in req.functions if f in hive.catalog)
    if fns != rec.functions:
        rec.functions = fns
        rec.loading = rec.loading - fns
    # A node killed mid-poll closes its connection; noticing that at once (instead of after
    # node_timeout_s of silence) lets callers get their 503 or their requeue promptly.
    watch = asyncio.ensure_future(receive())
    watch.add_done_callback(lambda f: _on_disconnect(hive, rec, f))
    try:
        tasks = await hive.dispatcher.poll(rec, fns, req.max_items, req.wait_ms / 1000, req.room)
    finally:
        watch.cancel()
    if rec.gone:  # the connection is gone: whatever was taken is already requeued
        return Reply(200, b'{"tasks":[]}')
    rec.last_seen = time.monotonic()
    now = time.monotonic()
    reply = PollReply(tasks=[hive.dispatcher.assignment(t, now) for t in tasks], hosting=rec.hosting_news())
    # while draining, close each node connection after its reply so the server can stop
    return Reply(200, _poll_reply.encode(reply), {"connection": "close"} if hive.draining else None)


@post("/v1/nodes/{node_id:str}/results", tags=["nodes"], request_max_body_size=NODE_BODY_LIMIT, status_code=200)
async def post_results(node_id: str, request: Request) -> dict[str, int]:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    req = decode_input(await request.body(), PollRequest, "results")
    before = hive.dispatcher.dropped_results
    _apply_results(hive, rec, req)
    return {"accepted": len(req.results) - (hive.dispatcher.dropped_results - before)}


@post("/v1/nodes/{node_id:str}/tasks/{task_id:str}/chunks", tags=["nodes"], status_code=200)
async def post_chunk(node_id: str, task_id: str, request: Request) -> dict[str, bool]:
    """A piece of a streamed task's output; ``accepted: false`` tells the node nobody listens
    any more (the caller went away), so it may stop early."""
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    chunk = decode_input(await request.body(), Chunk, "chunk")
    return {"accepted": hive.dispatcher.chunk(rec, task_id, chunk.text)}


@post("/v1/nodes/{node_id:str}/chunks", tags=["nodes"], request_max_body_size=NODE_BODY_LIMIT, status_code=200)
async def post_chunks(node_id: str, request: Request) -> dict[str, list[bool]]:
    """Pieces of several streamed tasks at once (a continuous batch makes one per row per
    step); ``accepted[i]`` is false where that task's caller went away."""
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    batch = decode_input(await request.body(), ChunkBatch, "chunks")
    chunk = hive.dispatcher.chunk
    return {"accepted": [chunk(rec, c.task, c.text, c.dtype) for c in batch.chunks]}


@post("/v1/nodes/{node_id:str}/heartbeat", tags=["nodes"], status_code=200)
async def heartbeat(node_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    hb = decode_input(await request.body(), Heartbeat, "heartbeat")
    rec.functions = frozenset(f for f in hb.functions if f in hive.catalog)
    rec.loading = frozenset(f for f in hb.loading if f in hive.catalog)
    rec.stats = hb.stats
    rec.draining = hb.draining
    rec.dtypes, rec.dtype_notes = hb.dtypes, hb.dtype_notes
    rec.adapters = hb.adapters
    if hb.rtt_ms is not None:
        rec.rtt_ms = hb.rtt_ms
    lease = time.monotonic() + hive.cfg.limits.lease_s
    for t in hive.dispatcher.in_flight.values():
        if t.node_id == rec.id:
            t.lease_until = lease
    hive.sync_placement()
    headers = {"connection": "close"} if hive.draining else None
    # the whole desired set on every beat (reconciling is idempotent); a calibration request once
    behind = hb.catalog != hive.catalog_generation  # a trained version joined: send the manifests again
    reply = HeartbeatReply(in_flight=rec.in_flight, hosting=rec.hosting, calibrate=rec.calibrate_pending,
                           catalog=hive.catalog_generation,
                           manifests=[msgspec.Raw(m) for m in hive.manifests_for_nodes()] if behind else None)
    rec.calibrate_pending = False
    return Response(content=msgspec.json.encode(reply), media_type=JSON, headers=headers)


@post(
    "/v1/nodes/{node_id:str}/calibration", tags=["nodes"], request_max_body_size=NODE_BODY_LIMIT, status_code=200
)
async def post_calibration(node_id: str, request: Request) -> dict[str, int]:
    """A node's measured figures per device (``colabhive.node.device_bench``): kept on the node's
    record for routing and in SQLite as history. score_per_price is added here, from the site."""
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    cal = decode_input(await request.body(), Calibration, "calibration")
    known = {d.id for d in rec.devices}
    for c in cal.devices:
        if c.device not in known:
            raise InvalidInput(f"device {c.device!r} is not one this node registered ({sorted(known)})", field="devices")
    price = rec.site_profile.price_per_gpu_hour if rec.site_profile is not None else 0.0
    rows = []
    for c in cal.devices:
        c.score_per_price = round(c.score / price, 5) if price > 0 else None
        rec.calibration[c.device] = c
        rows.append({
            "node_id": rec.id, "node_name": rec.name, "site": rec.site, "device": c.device, "score": c.score,
            "measured_at": c.measured_at, "body": msgspec.json.encode(c).decode(), "received_at": time.time(),
        })
    await hive.store.many("insert_calibration", rows)
    return {"accepted": len(rows)}


@post("/v1/nodes/{node_id:str}/calibrate", tags=["nodes"], status_code=202,
      summary="Ask a node to measure its devices again (it is told on its next heartbeat)")
async def calibrate_node(node_id: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    if hive.auth.require_keys and tenant not in hive.cfg.auth.operators:
        raise Forbidden(f"tenant {tenant!r} may not calibrate nodes; list it in hive.toml auth.operators")
    rec = hive.nodes.get(node_id)
    if rec is None:
        raise NotFound(f"no live node {node_id!r}; GET /v1/nodes lists them")
    rec.calibrate_pending = True
    last = max((c.measured_at for c in rec.calibration.values()), default=None)
    return {"node": rec.id, "calibrate_pending": True, "last_measured_at": last}


@delete("/v1/nodes/{node_id:str}", tags=["nodes"], status_code=200)
async def leave(node_id: str, request: Request) -> dict[str, bool]:
    """A node shutting down cleanly; whatever it still holds is requeued at once."""
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    rec.gone = True
    hive.dispatcher.reap(time.monotonic())
    await hive.store.execute("mark_nodes", {"id": rec.id, "status": "gone", "last_seen": time.time()})
    return {"ok": True}


@get("/v1/nodes", tags=["nodes"], summary="Connected nodes: devices, loaded functions, load")
async def list_nodes(request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await client_tenant(hive, request)  # node ids and hosts are for key holders when keys are on
    now = time.monotonic()
    return {
        "nodes": [msgspec.to_builtins(n.info(now)) for n in hive.nodes.live()],
        "gateway_version": __version__,
    }
