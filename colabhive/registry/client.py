"""Download a version's files from a gateway (``GET /v1/registry/{ref}/artifact``) and unpack them.

The tar is unpacked as it arrives (nothing the size of a model is held in memory, and no
second copy lands on disk), with tarfile's ``data`` filter so no member can escape the
target directory, and the byte count is checked against ``Content-Length``: a download
cut short raises instead of leaving a truncated model behind.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import httpx
import msgspec

from .files import HEADER_DIGEST, HEADER_SOURCE, SourceKind

__all__ = ["VersionFiles", "fetch_files"]

CHUNK = 1 << 20
Progress = Callable[[int, int], None]
"""``progress(bytes_so_far, total)``, as ``datasets push`` reports an upload."""


class VersionFiles(msgspec.Struct, frozen=True, kw_only=True):
    """A version's files, unpacked locally, and what the gateway said they are."""

    ref: str
    source: SourceKind
    sha256: str
    """The registry's digest of the version ("" when none is recorded)."""
    dir: str

    @property
    def path(self) -> Path:
        return Path(self.dir)


class _Reader(io.RawIOBase):
    """A file-like view of a response body, for tarfile's stream mode; counts what it read."""

    def __init__(self, chunks: Iterator[bytes], total: int, progress: Progress | None) -> None:
        self._chunks, self._buf, self._at = chunks, memoryview(b""), 0
        self.total, self.seen, self._progress = total, 0, progress

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._at == len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf, self._at = memoryview(chunk), 0
            self.seen += len(chunk)
            if self._progress is not None:
                self._progress(self.seen, self.total)
        n = min(len(out), len(self._buf) - self._at)
        out[:n] = self._buf[self._at:self._at + n]  # a view: no copy of the rest of the chunk
        self._at += n
        return n

    def drain(self) -> None:
        """Read past the archive's end blocks, so the byte count covers the whole body."""
        while self.read(1 << 16):
            pass


def fetch_files(http: httpx.Client, ref: str, into: Path, progress: Progress | None = None,
                before: Callable[[SourceKind], None] | None = None) -> VersionFiles:
    """``ref``'s files from the gateway behind ``http``, unpacked into ``into`` (created).

    ``before(source)`` is called once the headers say what the files are and before the body
    is read: raising there stops a download (a whole model's weights) that is of no use.
    Raises the hive's own error for a refusal (UnknownFunction, NoArtifact, Forbidden, ...),
    and ``httpx.RemoteProtocolError`` for a body shorter than announced (as httpx itself does)."""
    from ..sdk import _raise_for

    with http.stream("GET", f"/v1/registry/{ref}/artifact") as r:
        if r.status_code >= 400:
            r.read()
            _raise_for(r)
        source = cast(SourceKind, r.headers.get(HEADER_SOURCE, "path"))
        if before is not None:
            before(source)
        total = int(r.headers.get("content-length", 0))
        reader = _Reader(r.iter_bytes(CHUNK), total, progress)
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:
            tar.extractall(into, filter="data")
        reader.drain()
        if total and reader.seen != total:
            raise httpx.RemoteProtocolError(f"{ref}'s files arrived as {reader.seen} of {total} bytes")
        return VersionFiles(ref=ref, source=source, sha256=r.headers.get(HEADER_DIGEST, ""), dir=str(into))
