"""The SDK's datasets: ``Client(url).datasets.push(path)``, ``.list()``, ``.get(id)``, ``.delete(id)``.

``push`` streams the file (it is never read into memory whole) with its Content-Length,
so the gateway can refuse an oversized one before any byte is sent, and reports progress
to an optional callback (the CLI draws its progress bar with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ..errors import InvalidInput
from ..sdk import _raise_for
from .formats import FORMATS, MEDIA_TYPES, format_of_path

__all__ = ["DatasetsClient"]

CHUNK = 1 << 20
_MEDIA_OF = {fmt: media for media, fmt in reversed(list(MEDIA_TYPES.items()))}  # the first listed wins

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_sent, total_bytes)`` after each chunk."""


def _read(path: Path, total: int, progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, total)


class DatasetsClient:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def push(
        self, path: str | Path, name: str | None = None, *, format: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload a JSONL, CSV or Parquet file (format from its suffix unless given); the dataset."""
        p = Path(path)
        fmt = format or format_of_path(p)
        if fmt not in FORMATS:
            raise InvalidInput(f"cannot tell the format of {p.name!r}; pass format= one of {', '.join(FORMATS)}",
                               field="format")
        total = p.stat().st_size
        params = {"name": name or p.name}
        headers = {"content-type": _MEDIA_OF[fmt], "content-length": str(total)}
        resp = self._http.post("/v1/datasets", params=params, headers=headers, content=_read(p, total, progress))
        _raise_for(resp)
        return resp.json()

    def list(self) -> list[dict[str, Any]]:
        """Every dataset of the caller's tenant, newest first (all pages)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            resp = self._http.get("/v1/datasets", params={"limit": 500, **({"cursor": cursor} if cursor else {})})
            _raise_for(resp)
            page = resp.json()
            out += page["datasets"]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    def get(self, dataset_id: str) -> dict[str, Any]:
        """Schema, row count and the first rows."""
        resp = self._http.get(f"/v1/datasets/{dataset_id}")
        _raise_for(resp)
        return resp.json()

    def delete(self, dataset_id: str) -> None:
        """Conflict while a training job uses it; NotFound if there is none."""
        _raise_for(self._http.delete(f"/v1/datasets/{dataset_id}"))
