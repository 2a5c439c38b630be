"""The pieces of an experts job that need no gateway state: member names, step shares, the
dataset's rows, and how a member's files and prompts are named in the group's manifest."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..datasets.formats import iter_rows
from ..training.errors import InvalidSpec

__all__ = ["EXAMPLE_CHARS", "example_prompts", "member_names", "once", "read_rows", "share_steps", "source_doc"]

EXAMPLE_CHARS = 200


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "part"


def member_names(group: str, taxa: list[str]) -> list[str]:
    """``<group>-<taxon>``, unique and within a function name's 64 characters."""
    out: list[str] = []
    for t in taxa:
        base = f"{group}-{_slug(t)}"[:64].rstrip("-.")
        name, i = base, 2
        while name in out:
            name = f"{base[:60]}-{i}"
            i += 1
        out.append(name)
    return out


def share_steps(total: int, sizes: list[int], how: str, floor: int) -> list[int]:
    """The group's ``budget.max_steps`` split among its experts (largest remainders, so they sum to it
    unless the floor lifts a tiny one)."""
    n = len(sizes)
    weights = [1.0] * n if how == "equal" else [float(s) for s in sizes]
    raw = [total * w / sum(weights) for w in weights]
    steps = [int(r) for r in raw]
    for i in sorted(range(n), key=lambda i: raw[i] - steps[i], reverse=True)[: total - sum(steps)]:
        steps[i] += 1
    return [max(floor, s) for s in steps]


def read_rows(path: Path, fmt: str, max_rows: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in iter_rows(path, fmt):  # type: ignore[arg-type]
        rows.append(r)
        if len(rows) > max_rows:
            raise InvalidSpec(f"the dataset has more than {max_rows} rows (hparams.max_rows); raise it or "
                               "sample the data", field="hparams.max_rows")
    if len(rows) < 2:
        raise InvalidSpec("the dataset has fewer than 2 rows: nothing to partition", field="dataset.id")
    return rows


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def source_doc(source: Any, m: Any) -> dict[str, str]:
    """A manifest's weights as another manifest names them: its package, or its path made absolute."""
    if source.package:
        return {"package": source.package}
    return {"path": str(m.resolve(source.path))}


def example_prompts(eval_path: Path | None, n: int) -> list[str]:
    """A few of an expert's prompts, as the group's examples (so /auto can match requests to it)."""
    if eval_path is None or not eval_path.is_file():
        return []
    out = []
    for line in eval_path.read_text().splitlines()[:n]:
        try:
            inp = json.loads(line)["input"]
            out.append(str(inp["text"] if "text" in inp else inp["messages"][-1]["content"])[:EXAMPLE_CHARS])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return out
