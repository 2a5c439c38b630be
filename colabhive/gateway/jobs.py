"""Training jobs on the gateway: journal, queue, leases to nodes that fit, resume.

A job is written to SQLite before its 202 and kept in memory while unfinished. A node asks
for one (``lease``), long-polling like the task poll; it gets the first queued job whose
hardware fits one of its devices, counting the memory its placed models and its running jobs
hold there, so nothing is overcommitted. Every events post renews the lease; a lease that
runs out (``limits.job_lease_s``) puts the job back in the queue, and the next node resumes
it from its last uploaded checkpoint: the points after that step are dropped (they will be
redone), so the curve never counts a step twice. A gateway restart reloads every unfinished
job; running ones keep their lease until it runs out, so a node that is still training goes
on as if nothing happened.

This module is the scheduling half of the board: what a job is, admitting it, and deciding
which node holds it. What the holding node then reports (events, checkpoints, the result,
the finish), the per-job event log that the SSE stream follows, and how a job reads back
live in ``job_progress.py``, which ``JobBoard`` inherits from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..dispatch.node_registry import NodeRecord
from ..errors import Conflict, InvalidInput, NotFound
from ..jobwire import JobLease
from ..manifests import Hardware
from ..training.methods import get_method
from ..training.spec import JobSpec, decode_spec
from ..wire import Device
from .job_progress import JobProgress

if TYPE_CHECKING:
    from .hive import Hive

__all__ = ["Job", "JobBoard"]

log = logging.getLogger("colabhive.gateway")


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


class JobBoard(JobProgress):
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
        from .experts_jobs import ExpertGroups

        self.groups = ExpertGroups(self)
        """Parents of method ``experts``: never leased, they watch their children."""

    # ---- start, submit ----------------------------------------------------------------------
    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.monotonic()
        for row in await self.hive.store.fetch("unfinished_jobs"):
            spec, hparams = decode_spec(row["spec"].encode(), "json")
            if getattr(get_method(spec.method), "gateway_only", False):
                await self.groups.restore(row, spec, hparams)
                continue
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
        await self.groups.catch_up()

    async def submit(self, body: bytes, tenant: str, dry_run: bool = False) -> dict[str, Any]:
        """Queue a job (202 view), or with ``dry_run`` only say whether it would be accepted
        (an experts job also shows its partitions); nothing is written on a dry run."""
        spec, hparams = decode_spec(body, None)
        await self._check(spec, tenant)
        if getattr(get_method(spec.method), "gateway_only", False):
            return await self.groups.submit(spec, hparams, tenant, dry_run)
        if dry_run:
            if await self.hive.store.fetch("job_output_taken", {"output": spec.output}):
                raise Conflict(f"another job already produces {spec.output}; choose a new version", field="output")
            return {"dry_run": True, "method": spec.method, "output": spec.output, "accepted": True,
                    "spec": msgspec.to_builtins(spec)}
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
