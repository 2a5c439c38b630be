"""Trained versions' files, fetched from the gateway by sha256 and kept in a local cache.

A version a training job landed says ``source.artifact = <sha256>``: its weights or adapter
are in a tar the gateway holds. Before loading it, a node fetches that tar (checked against
its hash), unpacks it once under ``<state_dir>/artifacts/<sha256>/`` and points the
manifest's ``file`` there, so every relative path in it resolves inside the unpacked copy.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from ..errors import DatasetMismatch, NotFound
from ..manifests import Manifest

__all__ = ["ArtifactCache"]


class ArtifactCache:
    def __init__(self, directory: Path, gateway: str, credentials: Callable[[], tuple[str, str] | None]) -> None:
        self.dir = directory
        self.gateway = gateway.rstrip("/")
        self.credentials = credentials
        self._lock = threading.Lock()

    def resolve(self, m: Manifest) -> Manifest:
        """``m`` itself, or (for a trained version) ``m`` pointed at its fetched files."""
        sha = m.source.artifact
        if not sha:
            return m
        folder = self.dir / sha
        with self._lock:
            if not (folder / "manifest.toml").is_file():
                self._fetch(sha, folder)
        return msgspec.structs.replace(m, file=str(folder / "manifest.toml"))

    def _fetch(self, sha: str, folder: Path) -> None:
        creds = self.credentials()
        if creds is None:
            raise NotFound("this node is not registered; it cannot fetch trained artifacts yet")
        node_id, secret = creds
        r = httpx.get(f"{self.gateway}/v1/nodes/{node_id}/artifacts/{sha}",
                      headers={"authorization": f"Bearer {secret}"}, timeout=300)
        r.raise_for_status()
        got = hashlib.sha256(r.content).hexdigest()
        if got != sha:
            raise DatasetMismatch(f"artifact {sha[:12]}… arrived as bytes hashing to {got[:12]}…")
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
