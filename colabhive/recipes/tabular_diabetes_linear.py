"""tabular-diabetes-linear: ridge regression on standardised features of scikit-learn's bundled
diabetes data, the linear counterpart of ``tabular-diabetes`` (same seeded split, so the same
held-out rows in ``eval.jsonl``)."""

from __future__ import annotations

from pathlib import Path

from .tabular_common import load
from .tabular_linear import build_linear

NAME = "tabular-diabetes-linear"


def build(out_dir: Path, seed: int) -> dict[str, float]:
    return build_linear(out_dir, seed, recipe=NAME, ds=load("load_diabetes"), kind="regression")
