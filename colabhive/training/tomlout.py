"""A TOML writer for the flat documents training writes (exported manifests).

msgspec only reads TOML (writing needs ``tomli_w``, not installed here), and a manifest is
top-level keys plus one level of tables holding strings, numbers, booleans and lists of them,
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
    raise TypeError(f"{where}: cannot write {type(v).__name__} as TOML")


def dumps(doc: dict[str, Any]) -> str:
    """Scalars and lists first, then each dict as a ``[table]`` (empty tables left out)."""
    lines = [f"{k} = {_value(v, k)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, table in doc.items():
        if isinstance(table, dict) and table:
            lines += ["", f"[{k}]"]
            for kk, v in table.items():
                if isinstance(v, dict):
                    raise TypeError(f"{k}.{kk}: nested tables are not written")
                lines.append(f"{json.dumps(kk) if not kk.replace('_', '').isalnum() else kk} = {_value(v, f'{k}.{kk}')}")
    return "\n".join(lines) + "\n"
