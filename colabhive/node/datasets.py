"""The node's dataset cache: fetch a dataset from the gateway by sha256, once.

A training job names its data by sha256, so the cache needs no invalidation: a file named
``<sha256>.<format>`` is that content or it is not there. A download goes to a temporary
file, is hashed as it arrives and is renamed into place only when the hash matches, so a
cut-off or tampered transfer never becomes a cached file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import httpx

from ..config import HiveConfig
from ..datasets.store import is_dataset_id
from ..errors import DatasetMismatch, HiveError, NotFound
from ..sdk import _raise_for

__all__ = ["DatasetCache", "DatasetMismatch", "default_cache_dir"]

_PART = ".part"


def default_cache_dir(cfg: HiveConfig) -> Path:
    return cfg.resolve(cfg.state_dir) / "dataset-cache"


class DatasetCache:
    """``fetch(sha256)`` → the local path, downloading only what is not cached yet."""

    def __init__(self, directory: Path, gateway: str, node_id: str, secret: str, *, timeout_s: float = 300.0) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gateway = gateway.rstrip("/")
        self.node_id = node_id
        self.secret = secret
        self.timeout_s = timeout_s
        self.downloads = 0
        """How many fetches went to the gateway (the rest were served from the cache)."""
        for stale in self.dir.glob(f"*{_PART}"):  # a node killed mid-download
            stale.unlink(missing_ok=True)

    def cached(self, sha256: str) -> Path | None:
        return next((p for p in self.dir.glob(f"{sha256}.*") if not p.name.endswith(_PART)), None)

    def fetch(self, sha256: str) -> Path:
        """The dataset's file, from the cache or the gateway; DatasetMismatch if its bytes are wrong."""
        if not is_dataset_id(sha256):
            raise NotFound(f"{sha256[:80]!r} is not a dataset id (64 hex digits)")
        if (hit := self.cached(sha256)) is not None:
            return hit
        part = self.dir / f".{sha256[:16]}-{uuid.uuid4().hex[:8]}{_PART}"
        url = f"{self.gateway}/v1/nodes/{self.node_id}/datasets/{sha256}"
        try:
            h = hashlib.sha256()
            with httpx.stream("GET", url, headers={"authorization": f"Bearer {self.secret}"},
                              timeout=self.timeout_s) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                fmt = resp.headers.get("x-dataset-format", "bin")
                with part.open("wb") as f:
                    for chunk in resp.iter_bytes(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            self.downloads += 1
            if h.hexdigest() != sha256:
                raise DatasetMismatch(f"dataset {sha256[:12]}… arrived as bytes hashing to {h.hexdigest()[:12]}…; "
                                      "not cached")
            final = self.dir / f"{sha256}.{fmt if fmt.isalnum() else 'bin'}"
            os.replace(part, final)
            return final
        finally:
            part.unlink(missing_ok=True)
