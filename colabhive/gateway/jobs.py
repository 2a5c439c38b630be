"""Training jobs on the gateway: journal, queue, leases to nodes that fit, events, resume.

A job is written to SQLite before its 202 and kept in memory while unfinished. A node asks
for one (``lease``), long-polling like the task poll; it gets the first queued job whose
hardware fits one of its devices, counting the memory its placed models and its running jobs
hold there, so nothing is overcommitted. Every events post renews the lease; a lease that
runs out (``limits.job_lease_s``) puts the job back in the queue, and the next node resumes
it from its last uploaded checkpoint: the points after that step are dropped (they will be
redone), so the curve never counts a step twice. A gateway restart reloads every unfinished
job; running ones keep their lease until it runs out, so a node that is still training goes
on as if nothing happened.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..dispatch.node_registry import NodeRecord
from ..errors import Conflict, InvalidInput, NotFound
from ..jobwire import JobEvents, JobFinish, JobLease
from ..manifests import Hardware
from ..training.methods import get_method
from ..training.spec import JobSpec, decode_spec
from ..wire import Device
from .trained import land

if TYPE_CHECKING:
    from .hive import Hive

__all__ = ["Job", "JobBoard"]

log = logging.getLogger("colabhive.gateway")

"""The task a method's base function must have (methods absent here start from scratch)."""


@dataclass(slots=True)
class Job:
    """An unfinished job as the board holds it (finished ones are read from SQLite)."""

    id: str
    tenant: str
    spec: JobSpec
    spec_json: bytes
    status: str = "queued"
    node_id: str | None = None
    device: str | None = None
    lease_until: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    checkpoint_step: int | None = None
    last_metrics: dict[str, Any] | None = None
    cancel_requested: bool = False
    energy_j: float | None = None
    energy_prior: float = 0.0
    """Joules of earlier attempts (a node reports from its own lease on)."""
    energy_estimated: bool = False
    started: float = 0.0
    """time.monotonic() when this lease began (for the ETA)."""
    started_step: int = 0


def _fit(device: Device, hw: Hardware) -> bool:
    return device.kind in hw.device_kinds and any(t in device.dtypes for t in hw.dtypes)


class JobBoard:
    def __init__(self, hive: Hive) -> None:
        self.hive = hive
        self.dir = hive.cfg.resolve(hive.cfg.state_dir) / "jobs"
        self.jobs: dict[str, Job] = {}
        """Unfinished jobs by id (queued or running)."""
        self.queue: list[str] = []
        """Queued job ids, oldest first."""
        self._wake: asyncio.Event = asyncio.Event()
        self._listeners: dict[str, list[asyncio.Queue[int]]] = {}
        self._seq: dict[str, int] = {}
        self._lock = asyncio.Lock()

    # ---- start, submit ----------------------------------------------------------------------
    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.monotonic()
        for row in await self.hive.store.fetch("unfinished_jobs"):
            spec, _ = decode_spec(row["spec"].encode(), "json")
            job = Job(id=row["id"], tenant=row["tenant"], spec=spec, spec_json=row["spec"].encode(),
                      status=row["status"], node_id=row["node_id"], device=row["device"],
                      attempts=json.loads(row["attempts"] or "[]"), step=row["step"] or 0,
                      checkpoint_step=row["checkpoint_step"],
                      last_metrics=json.loads(row["last_metrics"]) if row["last_metrics"] else None)
            if job.status == "running":  # its node may still be training: give it one lease to say so
                job.lease_until = now + self.hive.cfg.limits.job_lease_s
                job.started, job.started_step = now, job.step
            else:
                self.queue.append(job.id)
            self.jobs[job.id] = job
            self._seq[job.id] = (await self.hive.store.fetch("last_job_event_seq", {"job_id": job.id}))[0]["seq"]

    async def submit(self, body: bytes, tenant: str) -> dict[str, Any]:
        spec, _ = decode_spec(body, None)
        await self._check(spec, tenant)
        job_id = uuid.uuid4().hex
        spec_json = msgspec.json.encode(spec)
        async with self._lock:
            if await self.hive.store.fetch("job_output_taken", {"output": spec.output}):
                raise Conflict(f"another job already produces {spec.output}; choose a new version", field="output")
            await self.hive.store.execute("insert_job", {
                "id": job_id, "tenant": tenant, "spec": spec_json.decode(), "method": spec.method,
                "output": spec.output, "total_steps": spec.budget.max_steps, "created_at": time.time()})
        for ds in filter(None, (spec.dataset.id, spec.eval.dataset)):
            await self.hive.datasets.use(ds, job_id, tenant)
        job = Job(id=job_id, tenant=tenant, spec=spec, spec_json=spec_json)
        self.jobs[job_id] = job
        self._seq[job_id] = 0
        self.queue.append(job_id)
        await self._event(job, "status", {"status": "queued"})
        self._wake.set()
        return await self.view(job_id, tenant)

    async def _check(self, spec: JobSpec, tenant: str) -> None:
        """Everything a spec can be refused for, before anything is written."""
        for fld, ds in (("dataset.id", spec.dataset.id), ("eval.dataset", spec.eval.dataset)):
            if ds is None:
                continue
            try:
                await self.hive.datasets.get(tenant, ds, with_sample=False)
            except NotFound as exc:
                raise InvalidInput(exc.message, field=fld) from None
        if spec.output in self.hive.catalog:
            raise Conflict(f"{spec.output} is already in the catalog; choose a new version", field="output")
        if spec.base is not None:
            try:
                base = self.hive.resolve(spec.base)
            except Exception as exc:  # unknown, retired, not promoted: all say why
                raise InvalidInput(f"base {spec.base!r}: {getattr(exc, 'message', exc)}", field="base") from None
            want = get_method(spec.method).base_tasks
            if want and base.manifest.task not in want:
                raise InvalidInput(f"method {spec.method} trains on a {' or '.join(sorted(want))} model; {base.ref} "
                                   f"is a {base.manifest.task} function", field="base")
        reason = self.unschedulable(spec.hardware)
        if reason is not None:
            raise InvalidInput(f"no node in this hive could ever run this job: {reason}", field="hardware")

    def unschedulable(self, hw: Hardware) -> str | None:
        """Why no node that has joined could host ``hw`` even when idle (None: some could,
        or none has joined yet and the job waits for one)."""
        nodes = [n for n in self.hive.nodes.nodes.values() if not n.gone] or list(self.hive.nodes.nodes.values())
        devices = [d for n in nodes for d in n.devices]
        if not devices:
            return None
        kinds = [d for d in devices if _fit(d, hw)]
        if not kinds:
            have = sorted({f"{d.kind} ({', '.join(d.dtypes)})" for d in devices})
            return (f"needs a {' or '.join(hw.device_kinds)} device with {' or '.join(hw.dtypes)}; "
                    f"the hive has {', '.join(have)}")
        need = hw.min_memory_mb
        sized = [d for d in kinds if not d.memory_mb or d.memory_mb >= need]
        if not sized:
            largest = max(kinds, key=lambda d: d.memory_mb)
            return (f"needs {need / 1024:.3g} GiB; the largest fitting device ({largest.id}, {largest.name or largest.kind}) "
                    f"has {largest.memory_mb / 1024:.3g} GiB")
        return None

    # ---- leases -----------------------------------------------------------------------------
    def _free_mb(self, node: NodeRecord, device: Device) -> int:
        used = self.hive.current_plan().used.get((node.id, device.id), 0)
        used += sum(j.spec.hardware.min_memory_mb for j in self.jobs.values()
                    if j.status == "running" and j.node_id == node.id and j.device == device.id)
        return device.memory_mb - used

    def _device_for(self, node: NodeRecord, job: Job) -> Device | None:
        hw = job.spec.hardware
        if any(j.status == "running" and j.node_id == node.id for j in self.jobs.values()):
            return None  # one job at a time per node: training takes the whole device budget it asks for
        for kind in hw.device_kinds:
            for d in node.devices:
                if d.kind == kind and _fit(d, hw) and (not d.memory_mb or self._free_mb(node, d) >= hw.min_memory_mb):
                    return d
        return None

    async def lease(self, node: NodeRecord, wait_s: float) -> JobLease | None:
        deadline = time.monotonic() + wait_s
        while True:
            self.reap()
            got = await self._take(node)
            if got is not None or node.draining:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(left, 1.0))
            except asyncio.TimeoutError:
                pass

    async def _take(self, node: NodeRecord) -> JobLease | None:
        async with self._lock:
            for job_id in list(self.queue):
                job = self.jobs[job_id]
                device = self._device_for(node, job)
                if device is None:
                    continue
                self.queue.remove(job_id)
                now = time.monotonic()
                job.status, job.node_id, job.device = "running", node.id, device.id
                job.lease_until = now + self.hive.cfg.limits.job_lease_s
                job.started, job.started_step = now, job.checkpoint_step or 0
                job.energy_prior = job.energy_j or 0.0
                job.attempts.append({"node": node.name, "node_id": node.id, "site": node.site, "device": device.id,
                                     "from_step": job.checkpoint_step or 0, "at": time.time()})
                await self.hive.store.execute("lease_job", {
                    "id": job.id, "node_id": node.id, "node_name": node.name, "site": node.site,
                    "device": device.id, "attempts": json.dumps(job.attempts), "now": time.time()})
                await self._event(job, "status", {"status": "running", "node": node.name, "site": node.site,
                                                  "device": device.id, "attempt": len(job.attempts),
                                                  "resume_step": job.checkpoint_step})
                formats = {}
                for key, ds in (("dataset_format", job.spec.dataset.id), ("eval_dataset_format", job.spec.eval.dataset)):
                    if ds:
                        formats[key] = (await self.hive.datasets.get(job.tenant, ds, with_sample=False)).format
                return JobLease(job_id=job.id, spec=msgspec.Raw(job.spec_json), attempt=len(job.attempts),
                                lease_s=self.hive.cfg.limits.job_lease_s, device=device.id,
                                resume_step=job.checkpoint_step, **formats)
        return None

    def still_running(self, node: NodeRecord, job_ids: list[str]) -> None:
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.node_id == node.id and job.status == "running":
                job.lease_until = time.monotonic() + self.hive.cfg.limits.job_lease_s

    def held_by(self, node: NodeRecord, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.node_id != node.id or job.status != "running":
            raise Conflict(f"job {job_id} is not leased to this node (it may have been cancelled or "
                           "handed to another node); stop it")
        return job

    def reap(self) -> int:
        """Requeue every running job whose lease ran out; fail those out of attempts."""
        now = time.monotonic()
        lost = [j for j in self.jobs.values() if j.status == "running" and j.lease_until < now]
        for job in lost:
            asyncio.ensure_future(self._lost(job))
        return len(lost)

    async def _lost(self, job: Job) -> None:
        if job.status != "running":
            return
        if job.attempts:
            job.attempts[-1]["ended"] = "lease lost"
        log.warning("job %s lost its lease on node %s at step %d; back to the queue from checkpoint %s",
                    job.id, job.node_id, job.step, job.checkpoint_step)
        if len(job.attempts) >= self.hive.cfg.limits.job_max_attempts:
            await self._finish(job, "failed", error={"code": "job_failed", "message": (
                f"lost its node {len(job.attempts)} times (limits.job_max_attempts); last at step {job.step}")})
            return
        job.status, job.node_id, job.device = "queued", None, None
        job.step = job.checkpoint_step or 0
        await self.hive.store.execute("drop_job_metrics_after", {"job_id": job.id, "step": job.step})
        await self.hive.store.execute("requeue_job", {"id": job.id, "attempts": json.dumps(job.attempts),
                                                      "step": job.step})
        self.queue.insert(0, job.id)  # it was first once: it goes first again
        await self._event(job, "status", {"status": "queued", "reason": "lease lost", "resume_step": job.checkpoint_step})
        self._wake.set()

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
        if status != "succeeded":
            shutil.rmtree(self._job_dir(job.id), ignore_errors=True)
        await self._event(job, "status", {"status": status, **({"error": error} if error else {}),
                                          **({"result": result} if result else {})})
        self._wake.set()

    async def cancel(self, job_id: str, tenant: str) -> dict[str, Any]:
        view = await self.view(job_id, tenant)
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
        return out

    def _eta(self, job: Job | None, total: int | None) -> float | None:
        if job is None or job.status != "running" or not total or job.step <= job.started_step:
            return None
        rate = (job.step - job.started_step) / max(time.monotonic() - job.started, 1e-6)
        return round((total - job.step) / rate, 1)
