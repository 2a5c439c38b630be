"""What the tabular recipes share: load a bundled scikit-learn dataset, split it, fit LightGBM,
score the held-out rows, write the model directory the ``tabular`` runner reads.

The number of boosting rounds is picked by early stopping on a validation slice of the
training rows (never the test rows), then the model is refit on all training rows with
that many rounds, so the held-out metrics are honest estimates rather than tuned-on ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .provenance import write_provenance

__all__ = ["Dataset", "build_tabular", "load", "split", "TEST_SIZE"]

Kind = Literal["binary", "multiclass", "regression"]
TEST_SIZE = 0.25
BASE_PARAMS: dict[str, Any] = {
    "num_leaves": 7,
    "learning_rate": 0.05,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,  # these datasets are tiny: threads only add scheduling noise
}
MAX_ROUNDS, PATIENCE = 1000, 50


class Dataset:
    """A bundled dataset as the recipe uses it: features, target, names, where it came from."""

    def __init__(self, loader: str, x: np.ndarray, y: np.ndarray, features: list[str], labels: list[str] | None):
        self.loader, self.x, self.y, self.features, self.labels = loader, x, y, features, labels

    def record(self) -> dict[str, Any]:
        h = hashlib.sha256(np.ascontiguousarray(self.x, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.y, dtype=np.float64).tobytes())
        return {
            "source": f"scikit-learn=={metadata.version('scikit-learn')}:{self.loader}",
            "sha256": h.hexdigest(),
            "rows": int(self.x.shape[0]),
            "columns": int(self.x.shape[1]),
        }


def load(loader: str, labels: list[str] | None = None) -> Dataset:
    """``labels`` renames the target classes (in target order); None keeps a regression target."""
    import sklearn.datasets

    d = getattr(sklearn.datasets, loader)()
    names = [str(f) for f in d.feature_names]
    if labels is not None and len(labels) != len(d.target_names):
        raise ValueError(f"{loader} has {len(d.target_names)} classes, got {len(labels)} labels")
    return Dataset(loader, np.asarray(d.data, dtype=np.float64), np.asarray(d.target), names, labels)


def split(y: np.ndarray, kind: Kind, seed: int, test_size: float = TEST_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices, stratified: by class, or by target quintile for regression
    (so both halves see the whole range of values)."""
    from sklearn.model_selection import train_test_split

    strata = y if kind != "regression" else np.digitize(y, np.quantile(y, [0.2, 0.4, 0.6, 0.8]))
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strata)
    return np.sort(train), np.sort(test)


def _params(kind: Kind, n_classes: int, seed: int) -> dict[str, Any]:
    p = {**BASE_PARAMS, "objective": kind, "seed": seed}
    if kind == "multiclass":
        p["num_class"] = n_classes
    return p


def _fit(ds: Dataset, kind: Kind, train: np.ndarray, seed: int) -> tuple[Any, int]:
    """Rounds by early stopping on a quarter of the training rows, then a refit on all of them."""
    import lightgbm as lgb

    params = _params(kind, len(ds.labels or []), seed)
    fit, val = split(ds.y[train], kind, seed)
    fit, val = train[fit], train[val]
    probe = lgb.train(
        params,
        lgb.Dataset(ds.x[fit], ds.y[fit]),
        num_boost_round=MAX_ROUNDS,
        valid_sets=[lgb.Dataset(ds.x[val], ds.y[val])],
        callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
    )
    rounds = max(int(probe.best_iteration), 1)
    return lgb.train(params, lgb.Dataset(ds.x[train], ds.y[train]), num_boost_round=rounds), rounds


def _metrics(kind: Kind, pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    if kind == "regression":
        ss_res = float(((pred - truth) ** 2).sum())
        ss_tot = float(((truth - truth.mean()) ** 2).sum())
        return {"r2": round(1 - ss_res / ss_tot, 4), "mae": round(float(np.abs(pred - truth).mean()), 4)}
    probs = np.column_stack([1 - pred, pred]) if kind == "binary" else pred
    chosen = probs[np.arange(len(truth)), truth.astype(int)]
    return {
        "accuracy": round(float((probs.argmax(1) == truth).mean()), 4),
        "log_loss": round(float(-np.log(np.clip(chosen, 1e-15, 1)).mean()), 4),
    }


def _eval_line(ds: Dataset, row: int, kind: Kind) -> dict[str, Any]:
    record = {f: float(v) for f, v in zip(ds.features, ds.x[row])}
    expected: Any = float(ds.y[row]) if kind == "regression" else (ds.labels or [])[int(ds.y[row])]
    return {"input": {"record": record}, "expected": expected}


def build_tabular(out_dir: Path, seed: int, *, recipe: str, ds: Dataset, kind: Kind) -> dict[str, float]:
    """Fit, score on the held-out rows, and write ``model.txt``, ``features.json``,
    ``eval.jsonl`` and ``provenance.json`` into ``out_dir``."""
    train, test = split(ds.y, kind, seed)
    booster, rounds = _fit(ds, kind, train, seed)
    booster.save_model(str(out_dir / "model.txt"))
    spec = {"features": ds.features, "labels": ds.labels, "kind": kind}
    (out_dir / "features.json").write_text(json.dumps(spec, indent=1) + "\n")
    (out_dir / "eval.jsonl").write_text("".join(json.dumps(_eval_line(ds, r, kind)) + "\n" for r in test))
    metrics: dict[str, float] = {**_metrics(kind, booster.predict(ds.x[test]), ds.y[test]), "test_rows": len(test)}
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    write_provenance(
        out_dir,
        recipe=recipe,
        data=[ds.record()],
        seed=seed,
        metrics=metrics,
        params={**_params(kind, len(ds.labels or []), seed), "num_boost_round": rounds, "test_size": TEST_SIZE},
        libraries=["lightgbm", "scikit-learn", "numpy"],
    )
    return metrics
