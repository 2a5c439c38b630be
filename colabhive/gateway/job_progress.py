"""The progress half of the job board: what a leased job's node reports, and how a job reads.

Once ``jobs.py`` has leased a job to a node, everything that node sends lands here: events
posts (points, logs, energy; each one renews the lease and answers whether to stop), the
checkpoints a later node resumes from, the result tar, and the finish that lands the result
as a catalog version or fails the job. Every change is appended to the job's event log in
SQLite with a per-job sequence number, and waiting listeners (the SSE stream of
``GET /v1/jobs/{id}/events``) are woken with it. Reading a job (``view``/``render``, with
progress and ETA) merges its SQLite row with the live in-memory state.

``JobProgress`` is a mixin: ``JobBoard`` (``jobs.py``) owns the state declared below and
inherits these methods, so the board stays one object to its callers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dispatch.node_registry import NodeRecord
from ..errors import Conflict, NotFound
from ..jobwire import JobEvents, JobFinish
from .trained import land

if TYPE_CHECKING:
    from .experts_jobs import ExpertGroups
    from .hive import Hive
    from .jobs import Job

__all__ = ["JobProgress"]

log = logging.getLogger("colabhive.gateway")


class JobProgress:
    hive: Hive
    dir: Path
    jobs: dict[str, Job]
    queue: list[str]
    _wake: asyncio.Event
    _listeners: dict[str, list[asyncio.Queue[int]]]
    _seq: dict[str, int]
    groups: ExpertGroups

    if TYPE_CHECKING:  # provided by JobBoard; declared only for the type checker
        def held_by(self, node: NodeRecord, job_id: str) -> Job: ...

    # ---- what a node posts --------------------------------------------------------------------
    async def events(self, node: NodeRecord, job_id: str, ev: JobEvents) -> bool:
        """Record points and logs; renew the lease. True: the node must stop (cancelled)."""
        job = self.jobs.get(job_id)
        if job is None or job.node_id != node.id or job.status != "running":
            return True
        job.lease_until = time.monotonic() + self.hive.cfg.limits.job_lease_s
        for point in ev.points:
            if job.status != "running":  # cancelled (or lost) while this post was being recorded
                return True
            step = int(point.get("step", job.step))
            if step <= job.step and job.last_metrics is not None and step <= int(job.last_metrics.get("step", -1)):
                continue  # already recorded (a retried post)
            job.step, job.last_metrics = step, point
            await self._event(job, "metrics", point, step=step)
        for line in ev.logs:
            await self._event(job, "log", {"line": line})
        if ev.energy_j is not None:  # the node counts from its lease; earlier attempts' joules stay
            job.energy_j = job.energy_prior + ev.energy_j
            job.energy_estimated = ev.energy_estimated
        if ev.points or ev.energy_j is not None:
            await self.hive.store.execute("job_progress", {
                "id": job.id, "step": job.step, "energy_j": job.energy_j,
                "last_metrics": json.dumps(job.last_metrics) if job.last_metrics else None})
        return job.cancel_requested

    def _job_dir(self, job_id: str) -> Path:
        return self.dir / job_id

    async def put_checkpoint(self, node: NodeRecord, job_id: str, step: int, chunks: AsyncIterator[bytes]) -> str:
        job = self.held_by(node, job_id)
        path, sha = await self._receive(self._job_dir(job_id), f"checkpoint-{step:09d}.tar", chunks)
        old = job.checkpoint_step
        job.checkpoint_step = step
        job.lease_until = time.monotonic() + self.hive.cfg.limits.job_lease_s
        await self.hive.store.execute("job_checkpoint", {"id": job.id, "step": step, "sha": sha})
        await self._event(job, "log", {"line": f"checkpoint at step {step} ({path.stat().st_size} bytes)"})
        if old is not None and old != step:
            (self._job_dir(job_id) / f"checkpoint-{old:09d}.tar").unlink(missing_ok=True)
        return sha

    def checkpoint_path(self, node: NodeRecord, job_id: str) -> tuple[Path, int]:
        job = self.held_by(node, job_id)
        if job.checkpoint_step is None:
            raise NotFound(f"job {job_id} has no checkpoint yet")
        return self._job_dir(job_id) / f"checkpoint-{job.checkpoint_step:09d}.tar", job.checkpoint_step

    async def put_result(self, node: NodeRecord, job_id: str, chunks: AsyncIterator[bytes]) -> str:
        self.held_by(node, job_id)
        _, sha = await self._receive(self._job_dir(job_id), "result.tar", chunks)
        await self.hive.store.execute("job_result_file", {"id": job_id, "sha": sha})
        return sha

    async def _receive(self, folder: Path, name: str, chunks: AsyncIterator[bytes]) -> tuple[Path, str]:
        """Stream a body to ``folder/name`` (hashed, size-capped), renamed only when whole."""
        from ..errors import PayloadTooLarge

        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
        h, size, cap = hashlib.sha256(), 0, self.hive.cfg.limits.max_checkpoint_bytes
        try:
            with part.open("wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > cap:
                        raise PayloadTooLarge(f"larger than limits.max_checkpoint_bytes ({cap} bytes)")
                    h.update(chunk)
                    f.write(chunk)
            final = folder / name
            part.replace(final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return final, h.hexdigest()

    async def finish(self, node: NodeRecord, job_id: str, fin: JobFinish) -> dict[str, Any]:
        job = self.held_by(node, job_id)
        if job.attempts:
            job.attempts[-1]["ended"] = fin.status
        if fin.energy_j is not None:
            job.energy_j = job.energy_prior + fin.energy_j
        job.step = max(job.step, fin.steps)
        result: dict[str, Any] = {"steps": fin.steps, "score": fin.score, "passed": fin.passed,
                                  "stopped": fin.stopped, "counters": fin.counters}
        if fin.status == "failed":
            await self._finish(job, "failed", error=fin.error or {"code": "job_failed", "message": "the node failed"},
                               result=result)
            return result
        try:
            result |= await land(self.hive, job, self._job_dir(job_id) / "result.tar", node)
        except Exception as exc:  # a bad export fails the job, never the gateway
            log.exception("job %s: landing its result failed", job.id)
            await self._finish(job, "failed", error={"code": "bad_export", "message": str(exc)}, result=result)
            return result
        await self._finish(job, "succeeded", result=result)
        return result

    async def _finish(self, job: Job, status: str, *, result: dict[str, Any] | None = None,
                      error: dict[str, Any] | None = None) -> None:
        job.status = status
        self.jobs.pop(job.id, None)
        if job.id in self.queue:
            self.queue.remove(job.id)
        await self.hive.store.execute("finish_job", {
            "id": job.id, "status": status, "result": json.dumps(result) if result else None,
            "error": json.dumps(error) if error else None, "now": time.time(), "step": job.step,
            "energy_j": job.energy_j, "attempts": json.dumps(job.attempts)})
        for ds in filter(None, (job.spec.dataset.id, job.spec.eval.dataset)):
            await self.hive.datasets.release(ds, job.id)
        if status != "succeeded" and job.id not in self.groups.groups:  # a parent keeps its children's record
            shutil.rmtree(self._job_dir(job.id), ignore_errors=True)
        await self._event(job, "status", {"status": status, **({"error": error} if error else {}),
                                          **({"result": result} if result else {})})
        self._wake.set()
        if job.id in self.groups.parent_of:
            await self.groups.child_finished(job, status, result, error)

    async def cancel(self, job_id: str, tenant: str) -> dict[str, Any]:
        view = await self.view(job_id, tenant)
        if job_id in self.groups.groups:
            await self.groups.cancel(job_id, tenant)
            return await self.view(job_id, tenant)
        job = self.jobs.get(job_id)
        if job is None:
            raise Conflict(f"job {job_id} already {view['status']}; nothing to cancel")
        # a running job's node hears it on its next events post (every half second) and stops
        job.cancel_requested = True
        await self._finish(job, "cancelled")
        return await self.view(job_id, tenant)

    # ---- reading ---------------------------------------------------------------------------
    async def _event(self, job: Job, kind: str, data: dict[str, Any], step: int | None = None) -> None:
        seq = self._seq.get(job.id, 0) + 1
        self._seq[job.id] = seq
        await self.hive.store.execute("insert_job_event", {
            "job_id": job.id, "seq": seq, "kind": kind, "step": step, "data": json.dumps(data), "at": time.time()})
        for q in self._listeners.get(job.id, []):
            q.put_nowait(seq)

    def listen(self, job_id: str) -> asyncio.Queue[int]:
        q: asyncio.Queue[int] = asyncio.Queue()
        self._listeners.setdefault(job_id, []).append(q)
        return q

    def unlisten(self, job_id: str, q: asyncio.Queue[int]) -> None:
        qs = self._listeners.get(job_id, [])
        if q in qs:
            qs.remove(q)
        if not qs:
            self._listeners.pop(job_id, None)

    async def row(self, job_id: str, tenant: str) -> dict[str, Any]:
        rows = await self.hive.store.fetch("get_job", {"id": job_id}) if len(job_id) <= 64 else []
        if not rows or rows[0]["tenant"] != tenant:
            raise NotFound(f"no job {job_id[:64]!r}; GET /v1/jobs lists yours")
        return rows[0]

    async def view(self, job_id: str, tenant: str) -> dict[str, Any]:
        return self.render(await self.row(job_id, tenant))

    def render(self, row: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(row["id"])
        spec = json.loads(row["spec"])
        total = row["total_steps"]
        step = job.step if job else row["step"]
        out: dict[str, Any] = {
            "id": row["id"], "status": job.status if job else row["status"], "method": row["method"],
            "output": row["output"], "spec": spec, "node": row["node_name"] if (job is None or job.node_id) else None,
            "site": row["site"], "device": row["device"], "attempts": json.loads(row["attempts"] or "[]"),
            "step": step, "total_steps": total,
            "progress": round(step / total, 4) if total else None,
            "last_metrics": (job.last_metrics if job else None) or (json.loads(row["last_metrics"]) if row["last_metrics"] else None),
            "checkpoint_step": job.checkpoint_step if job else row["checkpoint_step"],
            "energy_j": job.energy_j if job else row["energy_j"],
            "created_at": row["created_at"], "started_at": row["started_at"], "finished_at": row["finished_at"],
            "result": json.loads(row["result"]) if row["result"] else None,
            "error": json.loads(row["error"]) if row["error"] else None,
        }
        if job is not None and job.status == "queued":
            out["position"] = self.queue.index(job.id) + 1 if job.id in self.queue else None
            out["node"] = None
        out["eta_s"] = self._eta(job, total)
        if row["method"] == "experts":
            group = self.groups.groups.get(row["id"])
            children = self.groups.children_view(row["id"], None if group else self.groups.stored_children(row["id"]))
            out["children"] = children
            out["step"] = sum(c["step"] for c in children)
            out["progress"] = round(out["step"] / total, 4) if total else None
            if group is not None:
                out["status"] = "running"
        return out

    def _eta(self, job: Job | None, total: int | None) -> float | None:
        if job is None or job.status != "running" or not total or job.step <= job.started_step:
            return None
        rate = (job.step - job.started_step) / max(time.monotonic() - job.started, 1e-6)
        return round((total - job.step) / rate, 1)
