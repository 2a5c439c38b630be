"""tabular-breast-cancer: LightGBM on scikit-learn's bundled Wisconsin diagnostic data (569
tumours, 30 features from digitised cell images), predicting "malignant" or "benign"."""

from __future__ import annotations

from pathlib import Path

from .tabular_common import build_tabular, load

NAME = "tabular-breast-cancer"
LABELS = ["malignant", "benign"]  # sklearn's target order: 0 = malignant


def build(out_dir: Path, seed: int) -> dict[str, float]:
    return build_tabular(out_dir, seed, recipe=NAME, ds=load("load_breast_cancer", LABELS), kind="binary")
