"""The training methods, one module each; imported on first use (they are light: torch and
friends are imported inside the trainers, so decoding a spec on the gateway stays cheap).

- ``lora``: a PEFT LoRA adapter on a causal LM (SmolLM2), served as base plus adapter.
- ``head``: a linear classification head over a frozen sentence encoder (MiniLM).
- ``forecast``: a PatchTST forecaster from scratch, with conformal quantiles.
- ``tabular``: a LightGBM model from scratch, one boosting round per step.
"""

from __future__ import annotations

import importlib

from .base import BaseModel, Method, StepMetrics, Trainer, write_export

__all__ = ["METHODS", "BaseModel", "Method", "StepMetrics", "Trainer", "get_method", "write_export"]

METHODS: dict[str, str] = {"lora": "lora", "head": "head", "forecast": "forecast", "tabular": "tabular"}


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"no training method {name!r}; known: {sorted(METHODS)}")
    return importlib.import_module(f"{__name__}.{METHODS[name]}").METHOD
