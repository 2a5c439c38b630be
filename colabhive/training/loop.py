"""Run one training job: step until the budget, checkpoint, resume, evaluate, export.

This is what a node calls with a leased job (the lead wires leases and uploads around it). All
state lives under ``work_dir``::

    work_dir/checkpoints/step-000040/   the last complete checkpoints (``keep`` of them)
    work_dir/metrics.jsonl              one line per step (cut back to the checkpoint on resume), with
                                        ``step_s`` (the step's own seconds) and ``time`` (unix seconds at its end)
    work_dir/export/                    the new version: weights, eval.jsonl, manifest.toml

A checkpoint is written to a ``.tmp`` sibling and renamed when complete, so a job killed at
any moment resumes from the last whole one; a resumed run continues the same loss curve and
its counters carry on (see ``methods/base.py``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..manifests import LOWER_IS_BETTER, Source, read_manifest
from .errors import InvalidSpec, TrainingError
from .methods import BaseModel, get_method, write_export
from .spec import JobSpec, split_ref

__all__ = ["JobResult", "latest_checkpoint", "resolve_base", "run_job"]

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"


@dataclass
class JobResult:
    steps: int
    stopped: str
    """``max_steps``, ``max_minutes`` or ``stop_after`` (interrupted on purpose: no export)."""
    resumed_from: int | None
    score: float | None = None
    passed: bool | None = None
    manifest: Path | None = None
    last: dict[str, Any] = field(default_factory=dict)


def resolve_base(ref: str, manifest_dirs: list[Path], tasks: frozenset[str] = frozenset()) -> BaseModel:
    """The weights directory of a function (``name`` or ``name@version``) among manifest files;
    with ``tasks``, the function must be one of those (a LoRA base must be a generation model)."""
    from ..runners.base import source_path

    name, version = split_ref(ref)
    found = []
    for d in manifest_dirs:
        for path in sorted(d.glob("*.toml")):
            m, _ = read_manifest(path)
            if m is not None and m.name == name and (version is None or m.version == version):
                found.append(m)
    if not found:
        raise InvalidSpec(f"no manifest declares {ref!r}", field="base")
    m = max(found, key=lambda x: x.lifecycle == "preferred")
    if tasks and m.task not in tasks:
        raise InvalidSpec(f"base {m.ref} is a {m.task} function; this method starts from {' or '.join(sorted(tasks))}",
                          field="base")
    if m.ensemble is not None:
        raise InvalidSpec(f"base {m.ref} is an ensemble: name one of its members", field="base")
    src = m.source
    if src.path:
        src = Source(path=str(m.resolve(src.path)), adapter=str(m.resolve(src.adapter)) if src.adapter else "")
    return BaseModel(ref=m.ref, dir=source_path(m), source=src, options=dict(m.options))


def latest_checkpoint(work_dir: Path) -> Path | None:
    done = sorted(p for p in (work_dir / CHECKPOINTS).glob("step-*") if not p.name.endswith(".tmp"))
    return done[-1] if done else None


def _save(trainer: Any, work_dir: Path, keep: int) -> Path:
    root = work_dir / CHECKPOINTS
    final = root / f"step-{trainer.step_count:09d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_checkpoint(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(p for p in root.glob("step-*") if not p.name.endswith(".tmp"))[:-keep]:
        shutil.rmtree(old)
    return final


def _cut_metrics(path: Path, step: int) -> None:
    """Drop the lines after the checkpoint being resumed: those steps are about to be redone."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in lines))


def run_job(
    spec: JobSpec,
    hparams: Any,
    rows: list[dict[str, Any]],
    work_dir: Path,
    *,
    base: BaseModel | None = None,
    eval_rows: list[dict[str, Any]] | None = None,
    device: str = "cpu",
    stop_after: int | None = None,
    keep: int = 2,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_checkpoint: Callable[[Path, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> JobResult:
    """Train ``spec`` on ``rows`` (the uploaded dataset) in ``work_dir``, resuming if it holds a checkpoint.

    ``eval_rows`` is the second dataset when ``spec.eval.dataset`` names one; with
    ``eval.split`` the held-out rows are cut from ``rows`` by the method (seeded). ``on_checkpoint``
    gets each checkpoint directory as it is completed (a node uploads it); ``should_stop`` is asked
    before every step and ends the run like ``stop_after`` (no export). ``stop_after``
    stops after that many steps in total, leaving only checkpoints: an interruption on purpose.
    """
    method = get_method(spec.method)
    if getattr(method, "gateway_only", False):
        raise TrainingError(f"method {spec.method} runs on a gateway (it submits one job per partition): "
                            "POST it to /v1/jobs", field="method")
    if method.needs_base and base is None:
        raise TrainingError(f"method {spec.method} needs the base model {spec.base!r} resolved", field="base")
    if spec.eval.split is not None:
        rows, held = method.split(rows, spec.eval.split, spec.seed)
    elif eval_rows is None:
        raise TrainingError("eval.dataset names a dataset; pass its rows", field="eval.dataset")
    else:
        held = eval_rows
    work_dir.mkdir(parents=True, exist_ok=True)
    trainer = method.Trainer(base, rows, spec.dataset.columns, hparams, seed=spec.seed, device=device,
                             dtype=spec.hardware.dtypes[0], optimizer=spec.optimizer,
                             total_steps=spec.budget.max_steps)
    resumed = None
    if (ckpt := latest_checkpoint(work_dir)) is not None:
        trainer.load_checkpoint(ckpt)
        resumed = trainer.step_count
        _cut_metrics(work_dir / METRICS, resumed)
    t0 = time.monotonic()
    limit_s = spec.budget.max_minutes * 60 if spec.budget.max_minutes else None
    max_steps = spec.budget.max_steps
    last: dict[str, Any] = {}
    stopped = "max_steps"
    with (work_dir / METRICS).open("a") as log:
        while True:
            if max_steps is not None and trainer.step_count >= max_steps:
                stopped = "max_steps"
                break
            if stop_after is not None and trainer.step_count >= stop_after:
                stopped = "stop_after"
                break
            if should_stop is not None and should_stop():  # cancelled, or the node is leaving
                stopped = "stop_after"
                break
            if limit_s is not None and time.monotonic() - t0 >= limit_s:
                stopped = "max_minutes"
                break
            began = time.monotonic()
            last = trainer.step()
            # wall clock, so rates and gaps can be read off the points wherever they were made (a
            # resumed job's steps come from two nodes); not part of the curve a resume must reproduce
            last["step_s"] = round(time.monotonic() - began, 6)
            last["time"] = round(time.time(), 6)
            log.write(json.dumps(last) + "\n")
            log.flush()
            if on_step is not None:
                on_step(last)
            if trainer.step_count % spec.checkpoint_every == 0:
                saved = _save(trainer, work_dir, keep)
                if on_checkpoint is not None:
                    on_checkpoint(saved, trainer.step_count)
    if latest_checkpoint(work_dir) is None or latest_checkpoint(work_dir).name != f"step-{trainer.step_count:09d}":
        _save(trainer, work_dir, keep)
    result = JobResult(steps=trainer.step_count, stopped=stopped, resumed_from=resumed, last=last)
    if stopped == "stop_after":
        return result
    score = trainer.evaluate(held[: spec.eval.max_rows], spec.eval.metric)
    lower = spec.eval.metric in LOWER_IS_BETTER
    result.score = score
    result.passed = score <= spec.eval.threshold if lower else score >= spec.eval.threshold
    record = {"spec": spec, "steps": trainer.step_count, "stopped": stopped, "score": score,
              "metric": spec.eval.metric, "counters": trainer.counters(), "base": base.ref if base else None}
    import msgspec

    result.manifest = write_export(trainer, work_dir / "export", output=spec.output, eval_spec=spec.eval,
                                   eval_rows=held, hardware=spec.hardware,
                                   provenance=msgspec.to_builtins(record))
    return result
