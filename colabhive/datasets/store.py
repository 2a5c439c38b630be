"""Datasets on the gateway's disk, content-addressed: ``<state_dir>/datasets/<sha256>.<format>``.

An upload is streamed into a temporary file in the same directory while it is hashed and
counted, then checked row by row, then renamed into place (atomic on one filesystem) and
only then recorded in SQLite. So whatever goes wrong part way (a body cut off, one byte
over the limit, a malformed row, a gateway killed) leaves neither a file nor a row, and
the same bytes uploaded twice are the same dataset. One file serves every tenant that
uploaded those bytes; each tenant has its own row, and the file goes with the last row.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from ..errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from ..store import Store
from .formats import Column, Format, inspect

__all__ = ["Dataset", "DatasetStore", "is_dataset_id"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART = ".part"


def is_dataset_id(text: str) -> bool:
    return bool(_SHA256.fullmatch(text))


class Dataset(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    """sha256 of the file's bytes (hex): the same content is always the same dataset."""
    name: str
    format: Format
    bytes: int
    rows: int
    schema: list[Column]
    created_at: float
    sample: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    """The first rows (shown by GET /v1/datasets/{id}, not in the listing)."""


def _dataset(row: dict[str, Any], with_sample: bool) -> Dataset:
    return Dataset(
        id=row["id"], name=row["name"], format=row["format"], bytes=row["bytes"], rows=row["rows"],
        schema=msgspec.json.decode(row["schema"], type=list[Column]), created_at=row["created_at"],
        sample=msgspec.json.decode(row["sample"]) if with_sample else msgspec.UNSET,
    )


class DatasetStore:
    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store = store
        self.dir = state_dir / "datasets"
        self.dir.mkdir(parents=True, exist_ok=True)
        # rename+insert and delete+unlink each run under this lock, so a delete never unlinks
        # the file an upload of the same bytes has just put in place (one gateway process)
        self._lock = asyncio.Lock()
        for stale in self.dir.glob(f"*{_PART}"):  # left by a gateway killed mid-upload
            stale.unlink(missing_ok=True)

    def path_of(self, dataset_id: str, fmt: str) -> Path:
        return self.dir / f"{dataset_id}.{fmt}"

    async def ingest(
        self,
        chunks: AsyncIterator[bytes],
        *,
        fmt: Format,
        name: str | None,
        tenant: str,
        max_bytes: int,
        declared_bytes: int | None = None,
    ) -> tuple[Dataset, bool]:
        """Store an upload; (the dataset, whether this tenant did not have it before)."""
        part = self.dir / f".upload-{uuid.uuid4().hex}{_PART}"
        try:
            digest, size = await self._receive(chunks, part, max_bytes, declared_bytes)
            info = await asyncio.to_thread(_sync_and_inspect, part, fmt)
            final = self.path_of(digest, fmt)
            async with self._lock:
                os.replace(part, final)  # identical bytes may already be there: same name, same content
                row = {
                    "id": digest, "tenant": tenant, "name": name or f"{digest[:12]}.{fmt}", "format": fmt,
                    "bytes": size, "rows": info.rows, "schema": msgspec.json.encode(info.columns).decode(),
                    "sample": msgspec.json.encode(info.sample).decode(), "created_at": time.time(),
                }
                assert self.store.db is not None
                try:
                    cur = await self.store.db.execute(self.store.q["insert_dataset"], row)
                    await self.store.db.commit()
                except BaseException:
                    if not await self.store.fetch("dataset_exists", {"id": digest}):
                        final.unlink(missing_ok=True)  # a file is never left without a row
                    raise
                created = cur.rowcount == 1
        finally:
            part.unlink(missing_ok=True)
        return await self.get(tenant, digest), created

    async def _receive(
        self, chunks: AsyncIterator[bytes], part: Path, max_bytes: int, declared: int | None
    ) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        with part.open("wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the dataset is larger than this gateway accepts ({max_bytes} bytes; "
                                          "hive.toml limits.max_dataset_bytes)")
                h.update(chunk)
                f.write(chunk)
        if declared is not None and size != declared:
            raise BadRequest(f"the upload was cut off: {size} of the {declared} bytes announced arrived")
        if size == 0:
            raise BadRequest("the request body is empty; send the dataset file as the body")
        return h.hexdigest(), size

    async def get(self, tenant: str, dataset_id: str, with_sample: bool = True) -> Dataset:
        rows = await self.store.fetch("get_dataset", {"tenant": tenant, "id": dataset_id}) if is_dataset_id(
            dataset_id) else []
        if not rows:
            raise NotFound(f"no dataset {dataset_id[:64]!r}; GET /v1/datasets lists yours")
        return _dataset(rows[0], with_sample)

    async def list(self, tenant: str, limit: int, after: tuple[float, str] | None) -> list[Dataset]:
        created, did = after if after is not None else (float("inf"), "")
        rows = await self.store.fetch(
            "list_datasets", {"tenant": tenant, "limit": limit, "after_created": created, "after_id": did}
        )
        return [_dataset(r, with_sample=False) for r in rows]

    async def delete(self, tenant: str, dataset_id: str) -> None:
        """Remove the tenant's dataset; 409 while a job uses it, 404 if it has none by that id."""
        ds = await self.get(tenant, dataset_id, with_sample=False)
        async with self._lock:
            assert self.store.db is not None
            cur = await self.store.db.execute(self.store.q["delete_unused_dataset"],
                                              {"tenant": tenant, "id": ds.id})
            await self.store.db.commit()
            if cur.rowcount == 0:
                jobs = [r["job_id"] for r in await self.store.fetch("dataset_users", {"tenant": tenant, "id": ds.id})]
                if not jobs:  # deleted by a concurrent request between the two statements
                    raise NotFound(f"no dataset {dataset_id!r}; GET /v1/datasets lists yours")
                raise Conflict(f"dataset {ds.id[:12]}… is used by training job(s) {', '.join(jobs)}; "
                               "it can be deleted once they no longer use it")
            if not await self.store.fetch("dataset_exists", {"id": ds.id}):  # no other tenant holds it
                self.path_of(ds.id, ds.format).unlink(missing_ok=True)

    async def locate(self, dataset_id: str) -> tuple[Path, Format]:
        """The file of a dataset any tenant holds (nodes fetch data for every tenant's jobs)."""
        rows = await self.store.fetch("dataset_exists", {"id": dataset_id}) if is_dataset_id(dataset_id) else []
        path = self.path_of(dataset_id, rows[0]["format"]) if rows else None
        if path is None or not path.is_file():
            raise NotFound(f"no dataset {dataset_id[:64]!r} on this gateway")
        return path, rows[0]["format"]

    async def use(self, dataset_id: str, job_id: str, tenant: str) -> None:
        """Mark the dataset as read by a job (training jobs call this), so it cannot be deleted."""
        await self.get(tenant, dataset_id, with_sample=False)
        await self.store.execute("insert_dataset_use", {"dataset_id": dataset_id, "job_id": job_id, "tenant": tenant})

    async def release(self, dataset_id: str, job_id: str) -> None:
        await self.store.execute("delete_dataset_use", {"dataset_id": dataset_id, "job_id": job_id})


def _sync_and_inspect(part: Path, fmt: Format):  # -> Inspection
    """On disk before it is checked (the row that follows must never name a torn file)."""
    with part.open("rb") as f:
        os.fsync(f.fileno())
    return inspect(part, fmt)
