"""tabular-diabetes: LightGBM regression on scikit-learn's bundled diabetes data (442 patients,
10 standardised baseline measurements) predicting disease progression one year later.

A hard target: linear models reach R² ≈ 0.5 on it and trees a little less, so the gate is set
from what was measured, not from what a classifier on the other datasets reaches."""

from __future__ import annotations

from pathlib import Path

from .tabular_common import build_tabular, load

NAME = "tabular-diabetes"


def build(out_dir: Path, seed: int) -> dict[str, float]:
    return build_tabular(out_dir, seed, recipe=NAME, ds=load("load_diabetes"), kind="regression")
