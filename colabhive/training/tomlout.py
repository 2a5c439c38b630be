"""A TOML writer for the flat documents training writes (exported manifests).

msgspec only reads TOML (writing needs ``tomli_w``, not installed here), and a manifest is
top-level keys plus tables (and sub-tables) holding strings, numbers, booleans and lists of them,
so a dozen lines cover it; JSON string escaping is valid TOML basic-string escaping.
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
        return "[" + ", ".join(_value(x, where) for x in v) + "]"
    if isinstance(v, dict):  # an inline table, inside a list (a guard's inputs)
        return "{ " + ", ".join(f"{_key(k)} = {_value(x, f'{where}.{k}')}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"{where}: cannot write {type(v).__name__} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _table(name: str, table: dict[str, Any]) -> list[str]:
    """``[name]`` with its scalars, then each sub-table as ``[name.sub]``; None is left out
    (TOML has no null, and a None field of a manifest Struct is its default)."""
    lines = ["", f"[{name}]"] + [f"{_key(k)} = {_value(v, f'{name}.{k}')}" for k, v in table.items()
                                 if v is not None and not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict) and v:
            lines += _table(f"{name}.{k}", v)
    return lines


def dumps(doc: dict[str, Any]) -> str:
    """Scalars and lists first, then each dict as a ``[table]`` (empty tables left out)."""
    lines = [f"{k} = {_value(v, k)}" for k, v in doc.items() if v is not None and not isinstance(v, dict)]
    for k, table in doc.items():
        if isinstance(table, dict) and table:
            lines += _table(k, table)
    return "\n".join(lines) + "\n"
