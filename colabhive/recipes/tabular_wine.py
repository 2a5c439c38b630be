"""tabular-wine: LightGBM on scikit-learn's bundled wine data (178 wines, 13 chemical
measurements), predicting which of three Italian cultivars it came from."""

from __future__ import annotations

from pathlib import Path

from .tabular_common import build_tabular, load

NAME = "tabular-wine"
LABELS = ["cultivar_1", "cultivar_2", "cultivar_3"]  # sklearn calls them class_0..class_2


def build(out_dir: Path, seed: int) -> dict[str, float]:
    return build_tabular(out_dir, seed, recipe=NAME, ds=load("load_wine", LABELS), kind="multiclass")
