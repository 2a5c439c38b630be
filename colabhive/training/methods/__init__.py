"""The training methods, one module each; imported on first use (they are light: torch and
friends are imported inside the trainers, so decoding a spec on the gateway stays cheap).

- ``lora``: a PEFT LoRA adapter on a causal LM (SmolLM2), served as base plus adapter.
- ``head``: a linear classification head over a frozen sentence encoder (MiniLM).
- ``forecast``: a PatchTST forecaster from scratch, with conformal quantiles.
- ``tabular``: a LightGBM model from scratch, one boosting round per step.

A plugin adds one through the ``hive_training_methods`` hook (``builtin.py`` registers these).
"""

from __future__ import annotations

from .base import BaseModel, Method, StepMetrics, Trainer, write_export

__all__ = ["BaseModel", "Method", "StepMetrics", "Trainer", "all_methods", "get_method", "names", "write_export"]

def all_methods() -> dict[str, type[Method]]:
    """Every method the plugins declare (``hive_training_methods``), by name, collected once
    per plugin manager; a gateway and a node with the same plugins agree on them."""
    from ...plugins import collect_named

    return collect_named("hive_training_methods", lambda m: isinstance(m, type) and issubclass(m, Method),
                         "colabhive.training.methods.Method", "training method")


def names() -> list[str]:
    return sorted(all_methods())


def get_method(name: str) -> type[Method]:
    """The method called ``name``; KeyError naming the known ones otherwise."""
    found = all_methods()
    if name not in found:
        raise KeyError(f"no training method {name!r}; known: {', '.join(sorted(found))}")
    return found[name]
