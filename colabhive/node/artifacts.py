"""Trained versions' files, fetched from the gateway by sha256 and kept in a local cache.

A version a training job landed says ``source.artifact = <sha256>``: its weights or adapter
are in a tar the gateway holds. Before loading it, a node fetches that tar (checked against
its hash), unpacks it once under ``<state_dir>/artifacts/<sha256>/`` and points the
manifest's ``file`` there, so every relative path in it resolves inside the unpacked copy.

An expert group's members are trained versions of their own: each member with an
``artifact`` is fetched the same way (the tar of its child job: a directory whose
``manifest.toml`` says ``source.adapter = "."``), and its ``adapter`` becomes an absolute path
into the unpacked copy, since the group's own ``file`` cannot point into all of them at once.
Members without an artifact keep paths relative to the group's manifest file.
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
        """``m`` itself, or (for a trained version) ``m`` pointed at its fetched files; an
        expert group's members with artifacts pointed at theirs."""
        if m.experts is not None and any(e.artifact for e in m.experts.members):
            members = [msgspec.structs.replace(e, adapter=str(self.folder(e.artifact) / e.adapter))
                       if e.artifact else e for e in m.experts.members]
            m = msgspec.structs.replace(m, experts=msgspec.structs.replace(m.experts, members=members))
        sha = m.source.artifact
        if not sha:
            return m
        return msgspec.structs.replace(m, file=str(self.folder(sha) / "manifest.toml"))

    def folder(self, sha: str) -> Path:
        """Where the artifact ``sha`` is unpacked, fetched first if it is not there yet."""
        folder = self.dir / sha
        with self._lock:
            if not (folder / "manifest.toml").is_file():
                self._fetch(sha, folder)
        return folder

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
