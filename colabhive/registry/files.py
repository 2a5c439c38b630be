"""A version's files as one uncompressed tar, streamed: what ``models export`` downloads.

Nodes and the CLI share no disk with the gateway, so a builder who wants a version's weights
(or the base an adapter merges into) gets them over HTTP. The tar is written on the fly from
the files as the gateway holds them, its length known up front (``Content-Length``), so a
download cut short is an error on the client and never a silently truncated model:

- a trained version (``source.artifact``): its landed directory, so ``provenance.json`` and
  the manifest come with the weights or adapter;
- a version by ``source.path``: that directory (a base's weights, config, tokenizer);
- a version by ``source.package``: the directory the package ships its weights in.

A built-in runner or an ensemble has no files (:class:`~colabhive.errors.NoArtifact`).
"""

from __future__ import annotations

import asyncio
import os
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import NoArtifact, NotFound
from ..manifests import Manifest

__all__ = ["HEADER_DIGEST", "HEADER_SOURCE", "HEADER_VERSION", "SourceKind", "TarPlan", "files_of", "tar_plan",
           "tar_stream"]

SourceKind = Literal["trained", "path", "package"]
HEADER_VERSION = "x-hive-version"
HEADER_SOURCE = "x-hive-source"
"""``trained``, ``path`` or ``package``: what the files are (see the module docstring)."""
HEADER_DIGEST = "x-hive-artifact-sha256"
"""The registry's digest of the version (as ``GET /v1/fn`` shows it; empty when none is recorded)."""
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


def files_of(m: Manifest) -> tuple[SourceKind, Path]:
    """Which directory holds ``m``'s files on this machine, and what kind of source it is."""
    if m.ensemble is not None:
        raise NoArtifact(f"{m.ref} is an ensemble: it combines its members' answers and has no files; "
                         f"export its members ({', '.join(m.ensemble.members)})")
    if m.source.artifact:
        kind: SourceKind = "trained"
        root = Path(m.file).parent
    elif m.source.adapter:  # its adapter may be anywhere on the gateway's disk, its base elsewhere again
        raise NoArtifact(f"{m.ref} is a base plus an adapter that its manifest names by path; only trained "
                         f"versions' adapters are served for export (copy {m.source.adapter!r} from its host)")
    elif m.source.path:
        kind, root = "path", m.resolve(m.source.path)
    elif m.source.package:
        from ..runners.base import source_path

        kind = "package"
        try:
            root = source_path(m)
        except (FileNotFoundError, ImportError) as exc:
            raise NotFound(f"{m.ref}'s package {m.source.package!r} is not installed on the gateway "
                           f"({exc})") from None
    else:
        raise NoArtifact(f"{m.ref} has no files to export: its {m.task!r} runner is built in")
    if not root.is_dir():
        raise NotFound(f"the gateway does not hold {m.ref}'s files ({root} is not a directory on its disk)")
    return kind, root


@dataclass(frozen=True, slots=True)
class _Entry:
    header: bytes
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class TarPlan:
    """Every member's header and size, read before the first byte is sent."""

    entries: list[_Entry]
    length: int
    """Bytes the stream will send, end-of-archive blocks included."""


def _pad(size: int) -> int:
    return -size % BLOCK


def tar_plan(root: Path) -> TarPlan:
    """Regular files under ``root`` in sorted order (``__pycache__`` left out; links to
    files are sent as the files they point at, links to directories are not followed)."""
    entries: list[_Entry] = []
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            path = Path(top) / name
            if not path.is_file():
                continue
            st = path.stat()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
            header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
            entries.append(_Entry(header, path, st.st_size))
    length = sum(len(e.header) + e.size + _pad(e.size) for e in entries) + 2 * BLOCK
    return TarPlan(entries, length)


async def tar_stream(plan: TarPlan) -> AsyncIterator[bytes]:
    """The tar's bytes; each file's size is fixed by the plan (a file that shrank since is
    an error, which cuts the response short: the client sees fewer bytes than promised)."""
    for e in plan.entries:
        yield e.header
        f = await asyncio.to_thread(e.path.open, "rb")
        try:
            left = e.size
            while left:
                data = await asyncio.to_thread(f.read, min(CHUNK, left))
                if not data:
                    raise OSError(f"{e.path} shrank while it was being sent")
                left -= len(data)
                yield data
        finally:
            f.close()
        if _pad(e.size):
            yield bytes(_pad(e.size))
    yield bytes(2 * BLOCK)
