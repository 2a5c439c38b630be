"""The training methods, one module each; imported on first use (they are light: torch and
friends are imported inside the trainers, so decoding a spec on the gateway stays cheap).

- ``lora``: a PEFT LoRA adapter on a causal LM (SmolLM2), served as base plus adapter.
- ``head``: a linear classification head over a frozen sentence encoder (MiniLM).
- ``forecast``: a PatchTST forecaster from scratch, with conformal quantiles.
- ``tabular``: a LightGBM model from scratch, one boosting round per step.

A plugin adds one through the ``hive_training_methods`` hook (``builtin.py`` registers these).
"""

from __future__ import annotations

from ...errors import ConfigError
from .base import BaseModel, Method, StepMetrics, Trainer, write_export

__all__ = ["BaseModel", "Method", "StepMetrics", "Trainer", "all_methods", "get_method", "names", "write_export"]

_cache: tuple[tuple[object, ...], dict[str, type[Method]]] | None = None


def all_methods() -> dict[str, type[Method]]:
    """Every method the plugins declare (``hive_training_methods``), by name, collected once
    per plugin manager; a gateway and a node with the same plugins agree on them."""
    global _cache
    from ...plugins import get_plugin_manager

    pm = get_plugin_manager()
    key = (pm, *(i.plugin for i in pm.hook.hive_training_methods.get_hookimpls()))
    if _cache is not None and _cache[0] == key:  # a plugin registered since is seen
        return _cache[1]
    found: dict[str, type[Method]] = {}
    for batch in pm.hook.hive_training_methods():
        for m in batch or []:
            if not (isinstance(m, type) and issubclass(m, Method)):
                raise ConfigError(f"hive_training_methods returned {m!r}, not a colabhive.training.methods.Method")
            if m.name in found:
                raise ConfigError(f"training method {m.name!r} is declared twice: by {found[m.name]!r} and by {m!r}")
            found[m.name] = m
    _cache = (key, found)
    return found


def names() -> list[str]:
    return sorted(all_methods())


def get_method(name: str) -> type[Method]:
    """The method called ``name``; KeyError naming the known ones otherwise."""
    found = all_methods()
    if name not in found:
        raise KeyError(f"no training method {name!r}; known: {', '.join(sorted(found))}")
    return found[name]
