"""The ``tabular`` runner's linear backend: a standardised linear model in numpy.

``model.safetensors`` holds four float tensors: ``mean`` and ``scale`` (the standardisation
fitted on the training rows, ``[n_features]``), ``coef`` (``[n_out, n_features]``) and
``intercept`` (``[n_out]``). A row is standardised, ``z = x @ coef.T + intercept``, then
turned into what the LightGBM backend returns, so the runner reads both alike:

- binary (``n_out = 1``): the sigmoid of ``z``, the probability of the *second* label;
- multiclass (``n_out`` = the number of labels): the softmax of ``z``, one column per label;
- regression (``n_out = 1``): ``z`` itself.

That is exactly scikit-learn's ``LogisticRegression.predict_proba`` and ``Ridge.predict``
on a ``StandardScaler`` pipeline, which is how the recipes train it.

A missing feature (only when the manifest allows it) arrives as NaN and is imputed with
the training mean: its standardised value is 0, so it adds nothing to ``z``. Unlike the
trees, which learned a branch for missing values, a linear model has nothing better to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TENSORS", "LinearModel"]

TENSORS = ("mean", "scale", "coef", "intercept")


class LinearModel:
    def __init__(self, tensors: dict[str, np.ndarray], kind: str, labels: list[str] | None, features: list[str]):
        t = {k: np.asarray(tensors[k], dtype=np.float64) for k in TENSORS if k in tensors}
        if missing := [k for k in TENSORS if k not in t]:
            raise ValueError(f"model.safetensors lacks {', '.join(missing)}")
        n, n_out = len(features), (len(labels or []) if kind == "multiclass" else 1)
        want = {"mean": (n,), "scale": (n,), "coef": (n_out, n), "intercept": (n_out,)}
        for k, shape in want.items():
            if t[k].shape != shape:
                raise ValueError(f"model.safetensors: `{k}` is {t[k].shape}, want {shape} ({kind}, {n} features)")
        if not (np.all(np.isfinite(t["scale"])) and np.all(t["scale"] > 0)):
            raise ValueError("model.safetensors: `scale` must be finite and positive")
        self.kind = kind
        self.mean, self.scale, self.coef, self.intercept = (t[k] for k in TENSORS)

    @classmethod
    def load(cls, path: Path, spec: dict[str, Any]) -> LinearModel:
        from safetensors.numpy import load_file

        return cls(load_file(str(path)), spec["kind"], spec.get("labels"), spec["features"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Rows ``[n, n_features]`` (NaN = missing) → as LightGBM's ``Booster.predict``: ``[n]``
        for binary (P of the second label) and regression, ``[n, n_labels]`` for multiclass."""
        s = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        s = np.where(np.isnan(s), 0.0, s)  # a missing feature is the training mean
        z = s @ self.coef.T + self.intercept
        if self.kind == "regression":
            return z[:, 0]
        if self.kind == "binary":
            e = np.exp(-np.abs(z[:, 0]))  # a sigmoid that overflows for no z
            return np.where(z[:, 0] >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
