"""A finished job's result becomes a version in the registry.

The node uploads its export (a tar of a self-contained manifest directory: weights or
adapter, ``eval.jsonl``, ``manifest.toml`` with paths relative to itself). Here it is
unpacked under ``<state_dir>/trained/<name>-<version>/``, given its provenance, marked
``candidate`` and ``source.artifact = <sha256 of the tar>`` (so a node that will serve it
fetches the same bytes over HTTP: nodes share no disk with the gateway), and added to the
running catalog. Its evaluation runs on the hive as soon as a node serves it; promotion
goes through the same gate as every version.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..dispatch.node_registry import NodeRecord
from ..errors import NotFound
from ..recipes.provenance import artifact_digest, file_sha256
from ..training.tomlout import dumps

if TYPE_CHECKING:
    from .hive import Hive
    from .jobs import Job

__all__ = ["artifact_path", "land", "trained_dirs", "unpack"]

log = logging.getLogger("colabhive.gateway")
EVAL_WAIT_S = 600.0
"""How long a landed version waits for a node to load it before its evaluation is left to an operator."""
LIBRARIES = ("colabhive", "torch", "transformers", "peft", "safetensors", "msgspec", "lightgbm", "scikit-learn")


def _state(hive: Hive) -> Path:
    return hive.cfg.resolve(hive.cfg.state_dir)


def trained_dirs(hive: Hive) -> list[Path]:
    """Every landed version's directory (the catalog loads them with the manifest dirs)."""
    root = _state(hive) / "trained"
    return sorted(p for p in root.iterdir() if (p / "manifest.toml").is_file()) if root.is_dir() else []


def artifact_path(hive: Hive, sha256: str) -> Path:
    path = _state(hive) / "artifacts" / f"{sha256}.tar"
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256) or not path.is_file():
        raise NotFound(f"no trained artifact {sha256[:64]!r} on this gateway")
    return path


def unpack(tar_path: Path, into: Path) -> None:
    """Extract a tar whose members all stay inside ``into`` (no links, no absolute paths)."""
    tmp = into.with_name(into.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(into, ignore_errors=True)
    tmp.rename(into)


def _commit() -> str | None:
    here = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


async def land(hive: Hive, job: Job, tar_path: Path, node: NodeRecord) -> dict[str, Any]:
    """Register the job's uploaded export as ``spec.output`` (candidate) and start its evaluation."""
    spec = job.spec
    if not tar_path.is_file():
        raise ValueError("the node finished without uploading its result (PUT .../result)")
    sha = await asyncio.to_thread(file_sha256, tar_path)
    store = _state(hive) / "artifacts"
    store.mkdir(parents=True, exist_ok=True)
    kept = store / f"{sha}.tar"
    tar_path.replace(kept)
    name, version = spec.output.split("@", 1)
    folder = _state(hive) / "trained" / f"{name}-{version}"
    await asyncio.to_thread(unpack, kept, folder)
    manifest_file = folder / "manifest.toml"
    if not manifest_file.is_file():
        raise ValueError("the uploaded result holds no manifest.toml")
    doc = msgspec.toml.decode(manifest_file.read_bytes())
    if (doc.get("name"), doc.get("version")) != (name, version):
        raise ValueError(f"the result declares {doc.get('name')}@{doc.get('version')}, not {spec.output}")
    doc["lifecycle"] = "candidate"
    doc.setdefault("source", {})["artifact"] = sha
    manifest_file.write_text(dumps(doc))
    base_sha = None
    if spec.base is not None:
        try:
            base_sha = hive.resolve(spec.base).artifact.sha256
        except Exception:  # the base was retired meanwhile: its name is still in the spec
            base_sha = None
    # the registry's digest of what this version serves (as for a recipe's model: every file but
    # provenance.json), so its evaluations are pinned to these files and `colabhive models verify` checks them
    digest, files = await asyncio.to_thread(artifact_digest, folder)
    provenance = {
        "artifact": {"sha256": digest, "files": files},
        "job": job.id, "output": spec.output, "method": spec.method, "seed": spec.seed,
        "dataset_sha256": spec.dataset.id, "eval_dataset_sha256": spec.eval.dataset, "base": spec.base,
        "base_artifact_sha256": base_sha, "artifact_sha256": sha, "spec": json.loads(job.spec_json),
        "code_commit": _commit(), "libraries": _versions(), "final_metrics": job.last_metrics,
        "node": node.name, "site": node.site, "device": job.device, "energy_j": job.energy_j,
        "attempts": job.attempts, "landed_at": time.time(),
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str) + "\n")
    entry = await hive.add_version(manifest_file)
    asyncio.create_task(_evaluate_when_served(hive, entry.ref), name=f"evaluate {entry.ref}")
    return {"version": entry.ref, "artifact_sha256": sha, "lifecycle": "candidate"}


async def _evaluate_when_served(hive: Hive, ref: str) -> None:
    """The new version's own [eval] on the hive, once a node serves it (the report is what
    ``colabhive models promote`` gates on)."""
    from .model_routes import evaluate

    t0 = time.monotonic()
    while not hive.serving(ref):
        if time.monotonic() - t0 > EVAL_WAIT_S:
            log.warning("%s was not served within %.0f s; evaluate it with POST /v1/fn/%s/evaluate", ref, EVAL_WAIT_S, ref)
            return
        await asyncio.sleep(0.5)
    try:
        report = await evaluate(hive, hive.catalog[ref])
        log.info("%s evaluated on the hive: %s = %s", ref, report.metric, report.score)
    except Exception:
        log.exception("evaluating %s failed", ref)
