"""A TOML writer for the small documents training writes (exported manifests).

msgspec only reads TOML (writing needs ``tomli_w``, not installed here), and a manifest is
top-level keys plus tables holding strings, numbers, booleans, lists of them and sub-tables
(``[hardware.guard]``), so a few dozen lines cover it; JSON string escaping is valid TOML
basic-string escaping. ``None`` is left out: TOML has no null, and every optional field of a
manifest means "not set" by its absence (``msgspec.to_builtins`` of a Struct writes ``None``).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps"]


def _value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{where}: TOML here takes finite numbers, got {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        if any(x is None for x in v):
            raise TypeError(f"{where}: TOML has no null to put in a list")
        return "[" + ", ".join(_value(x, where) for x in v) + "]"
    raise TypeError(f"{where}: cannot write {type(v).__name__} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _table(doc: dict[str, Any], path: list[str], lines: list[str]) -> None:
    """Scalars and lists of ``doc`` first, then each sub-dict as ``[path.key]`` (empty ones left out:
    an empty table means the defaults, as its absence does)."""
    where = ".".join(path)
    lines += [f"{_key(k)} = {_value(v, f'{where}.{k}' if where else k)}"
              for k, v in doc.items() if v is not None and not isinstance(v, dict)]
    for k, sub in doc.items():
        if isinstance(sub, dict) and any(v is not None for v in sub.values()):
            lines += ["", "[" + ".".join(_key(p) for p in [*path, k]) + "]"]
            _table(sub, [*path, k], lines)


def dumps(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: top-level keys, then each table, its sub-tables after it."""
    lines: list[str] = []
    _table(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"
