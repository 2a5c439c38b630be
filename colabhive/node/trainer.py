"""The node's training side: lease a job that fits, train it, report, checkpoint, land it.

One thread asks the gateway for a job (a long poll of its own, beside the task poll) and
runs it through ``colabhive.training.run_job``; a second one posts the job's metric points
and log lines every half second (that renews the lease, and its reply says whether the job
was cancelled) and uploads each checkpoint as it is written, so the training loop never
waits on the network. A job that lost its node comes back here with ``resume_step``: the
checkpoint is fetched first and training continues from it.
"""

from __future__ import annotations

import gc
import io
import logging
import queue
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pluggy

from ..datasets.formats import iter_rows
from ..errors import HiveError
from ..jobwire import JobEvents, JobEventsReply, JobFinish, JobLease, LeaseReply, LeaseRequest
from ..manifests import Manifest, Source
from ..runners.base import source_path
from ..training.errors import InvalidSpec
from ..training.loop import run_job
from ..training.methods import BaseModel
from ..training.spec import decode_spec, split_ref
from ..wire import Device
from .datasets import DatasetCache
from .energy import EnergyMeter

__all__ = ["JobRunner", "tar_dir"]

log = logging.getLogger("colabhive.node")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the node log
POST_EVERY_S = 0.5
"""How often points go out (and how soon a cancel is heard)."""


def tar_dir(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(folder.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(folder)), recursive=False)
    return buf.getvalue()


def untar(data: bytes, into: Path) -> None:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


class _Reporter(threading.Thread):
    """Sends a running job's points, logs and checkpoints; notices a cancel."""

    def __init__(self, http: httpx.Client, base: str, lease_s: float) -> None:
        super().__init__(name="job-reporter", daemon=True)
        self.http, self.base = http, base
        self.points: list[dict[str, Any]] = []
        self.logs: list[str] = []
        self.uploads: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.lease_s = lease_s
        self.energy: Callable[[], tuple[float | None, bool]] | None = None
        """Device joules since the lease began, from the hardware plugin (None: it reports none)."""
        self._lock = threading.Lock()

    def point(self, p: dict[str, Any]) -> None:
        with self._lock:
            self.points.append(p)

    def log(self, line: str) -> None:
        with self._lock:
            self.logs.append(line)

    def run(self) -> None:
        while not self.done.is_set():
            self.flush()
            self._upload_pending()
            self.done.wait(POST_EVERY_S)
        self._upload_pending()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            points, logs, self.points, self.logs = self.points, self.logs, [], []
        energy, estimated = self.energy() if self.energy is not None else (None, False)
        body = msgspec.json.encode(JobEvents(points=points, logs=logs, energy_j=energy, energy_estimated=estimated))
        try:
            r = self.http.post(f"{self.base}/events", content=body)
        except httpx.HTTPError as exc:  # a slow or dropped connection: keep the points, try again
            log.warning("could not post job events (%s); retrying", exc)
            with self._lock:
                self.points, self.logs = points + self.points, logs + self.logs
            return
        if r.status_code >= 400 or msgspec.json.decode(r.content, type=JobEventsReply).cancel:
            self.cancelled.set()

    def _upload_pending(self) -> None:
        while True:
            try:
                item = self.uploads.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            step, data = item
            for attempt in range(5):
                try:
                    r = self.http.put(f"{self.base}/checkpoint", params={"step": step}, content=data)
                    if r.status_code < 400:
                        break
                    log.warning("checkpoint %d refused: %s", step, r.text[:200])
                    if r.status_code == 409:
                        self.cancelled.set()
                    break
                except httpx.HTTPError as exc:
                    log.warning("checkpoint %d upload failed (%s); retry %d", step, exc, attempt + 1)
                    time.sleep(min(2 ** attempt, 10))


class JobRunner(threading.Thread):
    """Leases one job at a time while the node runs."""

    def __init__(self, gateway: str, state_dir: Path, devices: list[Device], pm: pluggy.PluginManager,
                 credentials: Callable[[], tuple[str, str] | None], manifests: Callable[[], dict[str, Manifest]],
                 stopping: threading.Event, resolve_manifest: Callable[[Manifest], Manifest]) -> None:
        super().__init__(name="jobs", daemon=True)
        self.gateway = gateway.rstrip("/")
        self.work = state_dir / "jobs"
        self.cache_dir = state_dir / "datasets"
        self.devices = {d.id: d for d in devices}
        self.pm = pm
        self.credentials = credentials
        self.manifests = manifests
        self.stopping = stopping
        self.resolve_manifest = resolve_manifest
        self.current: str | None = None
        self.meter: EnergyMeter | None = None
        """The node's energy meter (the plugin's counters), shared with serving."""

    def run(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            creds = self.credentials()
            if creds is None:
                self.stopping.wait(0.5)
                continue
            node_id, secret = creds
            try:
                with httpx.Client(base_url=self.gateway, headers={"authorization": f"Bearer {secret}"},
                                  timeout=httpx.Timeout(60.0, connect=10.0)) as http:
                    body = msgspec.json.encode(LeaseRequest(wait_ms=15_000))
                    r = http.post(f"/v1/nodes/{node_id}/jobs/lease", content=body)
                    if r.status_code >= 400:
                        raise httpx.HTTPStatusError(r.text[:200], request=r.request, response=r)
                    lease = msgspec.json.decode(r.content, type=LeaseReply).job
                    delay = 0.5
                    if lease is not None:
                        self._run(http, node_id, secret, lease)
            except httpx.HTTPError as exc:
                log.debug("job lease poll failed: %s", exc)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    # ---- one job --------------------------------------------------------------------------
    def _run(self, http: httpx.Client, node_id: str, secret: str, lease: JobLease) -> None:
        job_id = lease.job_id
        self.current = job_id
        base = f"/v1/nodes/{node_id}/jobs/{job_id}"
        reporter = _Reporter(http, base, lease.lease_s)
        if self.meter is not None and lease.device in self.devices:
            reading = self.meter.begin(self.devices[lease.device], f"job:{job_id}")
            reporter.energy = lambda: self.meter.end(reading)  # type: ignore[union-attr]
        reporter.start()
        work = self.work / job_id
        log.info("training job %s (attempt %d) on %s%s", job_id, lease.attempt, lease.device,
                 f", resuming from step {lease.resume_step}" if lease.resume_step is not None else "")
        try:
            spec, hparams = decode_spec(bytes(lease.spec), "json")
            if lease.resume_step is None:
                shutil.rmtree(work, ignore_errors=True)  # another attempt's leftovers would be resumed
            else:
                self._fetch_checkpoint(http, base, work, lease.resume_step)
            datasets = DatasetCache(self.cache_dir, self.gateway, node_id, secret)
            rows = list(iter_rows(datasets.fetch(spec.dataset.id), lease.dataset_format))  # type: ignore[arg-type]
            eval_rows = (list(iter_rows(datasets.fetch(spec.eval.dataset), lease.eval_dataset_format))  # type: ignore[arg-type]
                         if spec.eval.dataset else None)
            reporter.log(f"dataset {spec.dataset.id[:12]}…: {len(rows)} rows")
            device = self.devices[lease.device]
            target = self.pm.hook.hive_torch_device(device=device) or "cpu"
            result = run_job(
                spec, hparams, rows, work, base=self._base(spec.base), eval_rows=eval_rows, device=target,
                on_step=reporter.point,
                on_checkpoint=lambda path, step: reporter.uploads.put((step, tar_dir(path))),
                should_stop=lambda: reporter.cancelled.is_set() or self.stopping.is_set(),
            )
            if result.stopped == "stop_after":  # cancelled, or this node is leaving: the lease ends here
                log.info("job %s stopped at step %d (%s)", job_id, result.steps,
                         "cancelled" if reporter.cancelled.is_set() else "node stopping")
                return
            reporter.done.set()
            reporter.join(30)
            assert result.manifest is not None
            r = http.put(f"{base}/result", content=tar_dir(result.manifest.parent))
            r.raise_for_status()
            fin = JobFinish(status="succeeded", steps=result.steps, score=result.score, passed=result.passed,
                            stopped=result.stopped, counters=dict(result.last))  # the last point holds the counters
            r = http.post(f"{base}/finish", content=msgspec.json.encode(fin))
            log.info("job %s finished: %s", job_id, r.text[:300])
        except HiveError as exc:  # the spec or the data is at fault: say so, do not retry
            log.warning("job %s failed: %s", job_id, exc)
            self._fail(http, base, exc.code, exc.message)
        except httpx.HTTPError:
            raise  # the gateway is away: the lease runs out and the job resumes elsewhere
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job_id)
            self._fail(http, base, "internal", f"{type(exc).__name__}: {exc}")
        finally:
            reporter.done.set()
            self.current = None
            gc.collect()  # the trainer's tensors go now, not at the next job
            for device in self.devices.values():
                try:
                    self.pm.hook.hive_release_memory(device=device)
                except Exception:
                    log.debug("releasing memory on %s failed", device.id, exc_info=True)

    def _fail(self, http: httpx.Client, base: str, code: str, message: str) -> None:
        fin = JobFinish(status="failed", error={"code": code, "message": message})
        try:
            http.post(f"{base}/finish", content=msgspec.json.encode(fin))
        except httpx.HTTPError as exc:
            log.warning("could not report the failure: %s", exc)

    def _fetch_checkpoint(self, http: httpx.Client, base: str, work: Path, step: int) -> None:
        r = http.get(f"{base}/checkpoint")
        r.raise_for_status()
        got = int(r.headers.get("x-checkpoint-step", step))
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        untar(r.content, work / "checkpoints" / f"step-{got:09d}")

    def _base(self, ref: str | None) -> BaseModel | None:
        if ref is None:
            return None
        name, version = split_ref(ref)
        found = [m for m in self.manifests().values()
                 if m.name == name and (version is None or m.version == version) and m.lifecycle != "retired"]
        if not found:
            raise InvalidSpec(f"this node has no manifest for {ref!r}", field="base")
        m = self.resolve_manifest(max(found, key=lambda x: (x.lifecycle == "preferred", x.version)))
        src = m.source
        if src.path:  # absolute, so an adapter trained on it can name it
            src = Source(path=str(m.resolve(src.path)), adapter=str(m.resolve(src.adapter)) if src.adapter else "")
        return BaseModel(ref=m.ref, dir=source_path(m), source=src, options=dict(m.options))
