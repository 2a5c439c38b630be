"""tabular-breast-cancer-linear: logistic regression on standardised features of scikit-learn's
bundled Wisconsin diagnostic data, the linear counterpart of ``tabular-breast-cancer`` (same
labels, same seeded split, so the same held-out rows in ``eval.jsonl``)."""

from __future__ import annotations

from pathlib import Path

from .tabular_breast_cancer import LABELS
from .tabular_common import load
from .tabular_linear import build_linear

NAME = "tabular-breast-cancer-linear"


def build(out_dir: Path, seed: int) -> dict[str, float]:
    return build_linear(out_dir, seed, recipe=NAME, ds=load("load_breast_cancer", LABELS), kind="binary")
