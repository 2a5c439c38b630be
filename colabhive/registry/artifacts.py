"""Artifacts addressed by sha256: what exactly a version of a function serves.

The digest is a sha256 over the sorted ``path\\0sha256`` lines of every file in the
artifact, so two versions with the same files share a digest whatever their names.
Computing it must not slow every gateway start (tests start dozens), so it is read from
records that were made when the files were written and checked then:

- a model built here: its ``provenance.json`` (the recipe hashed every file it wrote);
- a model that ships in a pip package: the distribution's ``RECORD``, whose per-file
  sha256 pip checked at install time.

``verify`` re-hashes the files on disk (``colabhive models verify``) for when that trust
is not enough.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
from importlib import metadata
from pathlib import Path

import msgspec

from ..manifests import Manifest
from ..recipes.provenance import artifact_digest

__all__ = ["Artifact", "artifact_of", "verify"]


class Artifact(msgspec.Struct, kw_only=True):
    sha256: str
    """Empty when no record exists (a hand-made directory): ``verify`` computes it."""
    source: str
    """``path:<dir>`` or ``package:<dist>==<version>``."""
    recorded_by: str
    """provenance.json, RECORD, or hashed (computed from the files themselves)."""
    files: int


def _combine(files: dict[str, str]) -> str:
    top = hashlib.sha256()
    for rel, digest in sorted(files.items()):
        top.update(f"{rel}\0{digest}\n".encode())
    return top.hexdigest()


def _from_provenance(root: Path) -> Artifact | None:
    prov = root / "provenance.json"
    if not prov.is_file():
        return None
    art = json.loads(prov.read_text()).get("artifact") or {}
    if not art.get("sha256"):
        return None
    return Artifact(sha256=art["sha256"], source=f"path:{root}", recorded_by="provenance.json",
                    files=len(art.get("files", {})))


@functools.cache
def _top_level() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed dist: once per process


def _dist_of(package: str) -> metadata.Distribution | None:
    # the import name is nearly always the distribution's name; the full scan is the fallback
    for dist_name in (package, package.replace("_", "-")):
        try:
            return metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
    for dist_name in _top_level().get(package, []):
        try:
            return metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _from_record(package: str) -> Artifact | None:
    """Digest of the package's own files from pip's RECORD (urlsafe-b64 sha256 per file)."""
    dist = _dist_of(package)
    record = dist.read_text("RECORD") if dist else None
    if dist is None or record is None:
        return None
    files: dict[str, str] = {}
    for row in csv.reader(io.StringIO(record)):
        if len(row) < 2 or not row[1].startswith("sha256="):
            continue
        rel = row[0]
        if not rel.startswith(f"{package}/") or "__pycache__" in rel:
            continue
        raw = base64.urlsafe_b64decode(row[1][len("sha256="):] + "==")
        files[rel[len(package) + 1:]] = raw.hex()
    if not files:
        return None
    return Artifact(sha256=_combine(files), source=f"package:{dist.metadata['Name']}=={dist.version}",
                    recorded_by="RECORD", files=len(files))


def _root(m: Manifest) -> Path | None:
    if m.source.path:
        return m.resolve(m.source.path)
    if m.source.package:
        import importlib.util

        spec = importlib.util.find_spec(m.source.package)
        if spec is not None and spec.origin is not None:
            return Path(spec.origin).parent
    return None


def artifact_of(m: Manifest) -> Artifact:
    """The recorded digest of what ``m`` serves (cheap: no file is hashed).

    An ensemble has no files: its artifact is its declaration (members and rule), so changing
    either makes a new digest while each member keeps its own."""
    if m.ensemble is not None:
        decl = msgspec.json.encode(m.ensemble)
        return Artifact(sha256=hashlib.sha256(decl).hexdigest(), source="ensemble:" + ",".join(m.ensemble.members),
                        recorded_by="manifest", files=0)
    if m.source.path:
        root = m.resolve(m.source.path)
        return _from_provenance(root) or Artifact(sha256="", source=f"path:{root}", recorded_by="none", files=0)
    if m.source.package:
        return _from_record(m.source.package) or Artifact(
            sha256="", source=f"package:{m.source.package}", recorded_by="none", files=0
        )
    return Artifact(sha256="", source="builtin", recorded_by="none", files=0)


def verify(m: Manifest) -> tuple[Artifact, str]:
    """Hash the files on disk; returns the recorded artifact and the digest found now.

    For a package the comparison covers the files pip recorded (generated files such as
    ``__pycache__`` are not part of the artifact).
    """
    recorded = artifact_of(m)
    if m.ensemble is not None:  # its declaration is all there is, and it was just read
        return recorded, recorded.sha256
    root = _root(m)
    if root is None:
        return recorded, ""
    if m.source.package and recorded.recorded_by == "RECORD":
        dist = _dist_of(m.source.package)
        assert dist is not None
        files = {}
        for f in dist.files or []:
            parts = Path(f).parts
            if parts and parts[0] == m.source.package and "__pycache__" not in parts and f.hash is not None:
                path = Path(str(dist.locate_file(f)))
                files[Path(*parts[1:]).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        return recorded, _combine(files)
    digest, _ = artifact_digest(root)
    return recorded, digest
