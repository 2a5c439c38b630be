"""Training job routes: what builders call (submit, follow, cancel) and what nodes call
(lease, events, checkpoints, result, finish). The scheduling itself is in ``jobs.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import Parameter
from litestar.response import File

from ..errors import InvalidInput
from ..jobwire import JobEvents, JobEventsReply, JobFinish, LeaseReply, LeaseRequest
from .dataset_routes import _chunks
from .errors import decode_input
from .hive import Hive
from .nodes import NODE_BODY_LIMIT, authenticate_node
from .tenants import client_tenant
from .trained import artifact_path
from .transport import PieceStream, Reply, ReplyResponse

__all__ = ["JOB_ROUTES"]

JSON = "application/json"
SPEC_LIMIT = 1 << 20


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=msgspec.json.encode(body), status_code=status, media_type=JSON, headers=headers)


# ---- builders ---------------------------------------------------------------------------------
@post("/v1/jobs", tags=["jobs"], status_code=202, request_max_body_size=SPEC_LIMIT,
      summary="Submit a training job (its spec as JSON); 202 + /v1/jobs/{id}. dry_run=true: only check it "
              "(an experts job shows its partitions), 200")
async def submit_job(request: Request, dry_run: bool = False) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    body = await request.body()
    if not body.strip():
        raise InvalidInput("the request body is empty; send a job spec", field="$")
    view = await hive.jobs.submit(body, tenant, dry_run=dry_run)
    if dry_run:
        return _json(view, 200)
    return _json(view, 202, {"location": f"/v1/jobs/{view['id']}"})


@get("/v1/jobs", tags=["jobs"], summary="Your training jobs, newest first (cursor-paginated)")
async def list_jobs(
    request: Request,
    status: str | None = Parameter(default=None, pattern="^(queued|running|succeeded|failed|cancelled)$"),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    after_created, after_id = None, None
    if cursor:
        created, _, after_id = cursor.partition(":")
        try:
            after_created = float(created)
        except ValueError:
            raise InvalidInput("cursor is not one this gateway issued", field="cursor") from None
    rows = await hive.store.fetch("list_jobs", {"tenant": tenant, "status": status, "limit": limit,
                                                "after_created": after_created, "after_id": after_id})
    next_cursor = f"{rows[-1]['created_at']!r}:{rows[-1]['id']}" if len(rows) == limit else None
    return _json({"jobs": [hive.jobs.render(r) for r in rows], "next_cursor": next_cursor})


@get("/v1/jobs/{job_id:str}", tags=["jobs"], summary="A job: status, spec, node, site, progress, ETA, last metrics")
async def get_job(job_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    return _json(await hive.jobs.view(job_id, await client_tenant(hive, request)))


@get("/v1/jobs/{job_id:str}/metrics", tags=["jobs"], summary="Every metric point of a job, in step order")
async def job_metrics(job_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    await hive.jobs.row(job_id, await client_tenant(hive, request))
    rows = await hive.store.fetch("job_metrics", {"job_id": job_id})
    return Response(content=b'{"points":[' + b",".join(r["data"].encode() for r in rows) + b"]}", media_type=JSON)


@get("/v1/jobs/{job_id:str}/events", tags=["jobs"],
     summary="A job's events as SSE (metrics, log, status), resumable with Last-Event-ID; follow=false: "
             "only those recorded so far")
async def job_events(job_id: str, request: Request, follow: bool = True) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    await hive.jobs.row(job_id, tenant)
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit():
        raise InvalidInput("Last-Event-ID must be the id of an event this job sent", field="Last-Event-ID")
    queue = hive.jobs.listen(job_id)
    return ReplyResponse(Reply(200, b"", stream=PieceStream(_sse(hive, job_id, int(raw), queue, follow),
                                                            cleanup=lambda: hive.jobs.unlisten(job_id, queue))))


async def _sse(hive: Hive, job_id: str, after: int, queue: asyncio.Queue[int],
               follow: bool = True) -> AsyncIterator[bytes]:
    """Every event after ``after``, then each new one; ends after the job's final status
    (or, not following, once it has sent what was recorded: ``colabhive jobs logs`` of a running job)."""
    while True:
        rows = await hive.store.fetch("job_events_after", {"job_id": job_id, "after": after, "limit": 500})
        for r in rows:
            after = r["seq"]
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (r["seq"], r["kind"].encode(), r["data"].encode())
            if r["kind"] == "status" and json.loads(r["data"])["status"] in ("succeeded", "failed", "cancelled"):
                return
        if len(rows) == 500:
            continue
        if not follow:
            return
        try:
            await asyncio.wait_for(queue.get(), timeout=15)
        except asyncio.TimeoutError:
            yield b": keep-alive\n\n"


@delete("/v1/jobs/{job_id:str}", tags=["jobs"], status_code=200,
        summary="Cancel a job (its node stops within a second and frees its memory)")
async def cancel_job(job_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    return _json(await hive.jobs.cancel(job_id, await client_tenant(hive, request)))


# ---- nodes ------------------------------------------------------------------------------------
@post("/v1/nodes/{node_id:str}/jobs/lease", tags=["nodes"], status_code=200,
      summary="A node asks for a training job that fits it (long poll)")
async def lease_job(node_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    req = decode_input(await request.body(), LeaseRequest, "lease")
    hive.jobs.still_running(rec, req.running)  # a restarted gateway hears which leases are alive
    lease = await hive.jobs.lease(rec, req.wait_ms / 1000)
    return Response(content=msgspec.json.encode(LeaseReply(job=lease)), media_type=JSON)


@post("/v1/nodes/{node_id:str}/jobs/{job_id:str}/events", tags=["nodes"], status_code=200,
      request_max_body_size=NODE_BODY_LIMIT, summary="Metric points and log lines of a running job (renews its lease)")
async def post_job_events(node_id: str, job_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    ev = decode_input(await request.body(), JobEvents, "job events")
    cancel = await hive.jobs.events(rec, job_id, ev)
    return Response(content=msgspec.json.encode(JobEventsReply(cancel=cancel)), media_type=JSON)


@put("/v1/nodes/{node_id:str}/jobs/{job_id:str}/checkpoint", tags=["nodes"], status_code=200,
     request_max_body_size=None, summary="Upload a job's checkpoint (a tar of one checkpoint directory)")
async def put_checkpoint(node_id: str, job_id: str, request: Request,
                         step: int = Parameter(ge=0)) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    sha = await hive.jobs.put_checkpoint(rec, job_id, step, _chunks(request))
    return {"step": step, "sha256": sha}


@get("/v1/nodes/{node_id:str}/jobs/{job_id:str}/checkpoint", tags=["nodes"],
     summary="The job's last checkpoint, for the node that resumes it")
async def get_checkpoint(node_id: str, job_id: str, request: Request) -> File:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    path, step = hive.jobs.checkpoint_path(rec, job_id)
    return File(path=path, filename=path.name, media_type="application/x-tar",
                headers={"x-checkpoint-step": str(step)})


@put("/v1/nodes/{node_id:str}/jobs/{job_id:str}/result", tags=["nodes"], status_code=200,
     request_max_body_size=None, summary="Upload the trained version (a tar of its export directory)")
async def put_result(node_id: str, job_id: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    return {"sha256": await hive.jobs.put_result(rec, job_id, _chunks(request))}


@post("/v1/nodes/{node_id:str}/jobs/{job_id:str}/finish", tags=["nodes"], status_code=200,
      summary="A job ended on its node: succeeded (its result uploaded) or failed")
async def finish_job(node_id: str, job_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    rec = authenticate_node(hive, node_id, request.headers)
    fin = decode_input(await request.body(), JobFinish, "job finish")
    return _json(await hive.jobs.finish(rec, job_id, fin))


@get("/v1/nodes/{node_id:str}/artifacts/{sha256:str}", tags=["nodes"],
     summary="A trained version's files (a tar, by sha256), for a node that will serve it")
async def node_artifact(node_id: str, sha256: str, request: Request) -> File:
    hive: Hive = request.app.state.hive
    authenticate_node(hive, node_id, request.headers)
    path = artifact_path(hive, sha256)
    return File(path=path, filename=path.name, media_type="application/x-tar", headers={"etag": f'"{sha256}"'})


JOB_ROUTES = [submit_job, list_jobs, get_job, job_metrics, job_events, cancel_job, lease_job, post_job_events,
              put_checkpoint, get_checkpoint, put_result, finish_job, node_artifact]
