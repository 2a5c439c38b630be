"""The training checkpoint and export formats: what a run writes to disk and reads back.

Split from :mod:`.base` so the on-disk layout lives in one place: a checkpoint directory
(``trainable.safetensors``, ``optimizer.pt``, then ``state.json`` last, so a directory without
it is an interrupted save) and an export directory (the servable artifact, ``eval.jsonl``,
``training.json`` and a validated ``manifest.toml``). :mod:`.base` keeps the Method and Trainer
contracts and re-exports these names, so ``from .base import read_state`` keeps working.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..errors import CheckpointError, TrainingError

if TYPE_CHECKING:
    from ...manifests import Hardware
    from ..spec import EvalSpec
    from .base import TorchTrainer, Trainer

__all__ = ["OPTIMIZER_FILE", "STATE_FILE", "WEIGHTS_FILE", "load_torch_checkpoint", "read_state",
           "save_torch_checkpoint", "write_export"]

STATE_FILE = "state.json"
WEIGHTS_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"


def save_torch_checkpoint(trainer: TorchTrainer, path: Path) -> None:
    """Weights (safetensors), optimizer and torch RNG (``optimizer.pt``), then ``state.json``
    last: a directory without it is an interrupted save and is never resumed from."""
    from safetensors.torch import save_file

    torch = trainer.torch
    path.mkdir(parents=True, exist_ok=True)
    save_file(trainer.trainable_state(), str(path / WEIGHTS_FILE))
    torch.save({"optimizer": trainer.optim.state_dict(), "torch_rng": torch.get_rng_state()}, path / OPTIMIZER_FILE)
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "method": trainer.method.name,
        "seed": trainer.seed,
        "optimizer": trainer.optimizer_kind,
        "hparams": msgspec.to_builtins(trainer.hparams),
        **trainer.counters(),
        "cursor": trainer.cursor.state(),
        "rng": {
            "python": [py[0], list(py[1]), py[2]],
            "numpy_global": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "trainer": trainer.rng.bit_generator.state,
        },
    }
    (path / STATE_FILE).write_text(json.dumps(state))


def load_torch_checkpoint(trainer: TorchTrainer, path: Path) -> None:
    """Restore what :func:`save_torch_checkpoint` wrote into ``trainer``; :class:`CheckpointError`
    when the directory is incomplete or belongs to another run."""
    from safetensors.torch import load_file

    torch = trainer.torch
    state = read_state(path)
    if (state["method"] != trainer.method.name or state["seed"] != trainer.seed
            or state["optimizer"] != trainer.optimizer_kind):
        raise CheckpointError(f"{path} is a {state['method']} checkpoint (seed {state['seed']}, "
                              f"{state['optimizer']}), not this run's")
    if state["hparams"] != msgspec.to_builtins(trainer.hparams):
        raise CheckpointError(f"{path} was trained with other hparams")
    weights = load_file(str(path / WEIGHTS_FILE))
    with torch.no_grad():
        for n, p in [*trainer.named, *((f"buffer:{n}", b) for n, b in trainer.buffers())]:
            if n not in weights:
                raise CheckpointError(f"{path}: no weight {n!r}")
            p.copy_(weights[n].to(p.device, p.dtype))
    saved = torch.load(path / OPTIMIZER_FILE, weights_only=True)
    trainer.optim.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    trainer.step_count, trainer.samples_seen = state["step"], state["samples_seen"]
    trainer.tokens_seen = state["tokens_seen"]
    trainer.cursor.restore(state["cursor"])
    rng = state["rng"]
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    g = rng["numpy_global"]
    np.random.set_state((g[0], np.array(g[1], dtype=np.uint32), *g[2:]))
    trainer.rng.bit_generator.state = rng["trainer"]


def read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a complete checkpoint ({exc})") from None


def write_export(
    trainer: Trainer,
    out: Path,
    *,
    output: str,
    eval_spec: EvalSpec | None,
    eval_rows: list[dict[str, Any]] | None,
    hardware: Hardware,
    description: str = "",
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Export the trainer into ``out`` with ``eval.jsonl`` and a complete ``manifest.toml``.

    The manifest's paths are relative to ``out``, so the directory can be moved as a whole
    into a manifests directory the hive loads; it is validated by the manifest code before
    this returns, so an export the runner would refuse never leaves the node.
    """
    from ...manifests import read_manifest
    from ..spec import split_ref
    from ..tomlout import dumps

    out.mkdir(parents=True, exist_ok=True)
    served = trainer.export(out)
    name, version = split_ref(output)
    manifest: dict[str, Any] = {
        "name": name,
        "version": version or "1.0.0",
        "task": trainer.method.task,
        "description": description or f"{trainer.method.name} trained from {trainer.base.ref if trainer.base else 'scratch'}",
        "lifecycle": "candidate",
        "source": served["source"],
        "hardware": msgspec.to_builtins(hardware),
        "options": served.get("options", {}),
    }
    if eval_spec is not None and eval_rows:
        raw = [trainer.row(r, i) for i, r in enumerate(eval_rows)][: eval_spec.max_rows]
        lines = trainer.eval_lines(raw)
        (out / "eval.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
        manifest["eval"] = {"dataset": "eval.jsonl", "metric": eval_spec.metric, "threshold": eval_spec.threshold,
                            "field": trainer.method.eval_field(eval_spec.metric, trainer)}
    if provenance is not None:
        (out / "training.json").write_text(json.dumps(provenance, indent=1, default=str) + "\n")
    path = out / "manifest.toml"
    path.write_text(dumps(manifest))
    m, problems = read_manifest(path)
    if m is None or problems:
        raise TrainingError(f"the exported manifest is invalid: {'; '.join(map(str, problems))}")
    return path
