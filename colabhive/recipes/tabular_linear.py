"""What the linear tabular recipes share: a standardised logistic regression (classes) or
ridge regression (a number) on a bundled scikit-learn dataset, written as the ``tabular``
runner's linear model (``model.safetensors`` and ``features.json`` with ``"model": "linear"``).

It uses the LightGBM recipes' seeded split (:func:`tabular_common.split`), so the test rows,
and so ``eval.jsonl``, are exactly theirs, line for line: the two families are scored on the
same held-out rows and can be compared or combined. The strength of the penalty (``C`` or
``alpha``) is picked by seeded 5-fold cross-validation on the training rows only, the
standardisation refitted inside every fold, then the pipeline is refit on all training
rows. The held-out metrics come from the runner's own numpy code, checked against
scikit-learn's predictions, so what provenance records is what the hive serves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .provenance import write_provenance
from .tabular_common import TEST_SIZE, Dataset, Kind, _eval_line, _metrics, split

__all__ = ["GRID", "build_linear"]

GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]
"""Candidate ``C`` (logistic: smaller is a stronger penalty) or ``alpha`` (ridge: larger is)."""
FOLDS = 5
MAX_ITER = 10_000


def _search(kind: Kind, seed: int) -> tuple[Any, str, dict[str, Any]]:
    """The (unfitted) cross-validated search, the name of its tuned parameter and its settings."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "regression":
        model, name, scoring = Ridge(), "alpha", "r2"
        cv: Any = KFold(FOLDS, shuffle=True, random_state=seed)
    else:
        model, name, scoring = LogisticRegression(max_iter=MAX_ITER), "C", "neg_log_loss"
        cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    pipe = Pipeline([("scale", StandardScaler()), ("model", model)])
    search = GridSearchCV(pipe, {f"model__{name}": GRID}, cv=cv, scoring=scoring, n_jobs=1)
    settings = {
        "model": type(model).__name__,
        "standardise": "StandardScaler, fitted on the training rows",
        "cv_folds": FOLDS,
        "cv_scoring": scoring,
        f"{name}_grid": GRID,
        **({"solver": model.solver, "max_iter": MAX_ITER} if kind != "regression" else {}),
    }
    return search, name, settings


def build_linear(out_dir: Path, seed: int, *, recipe: str, ds: Dataset, kind: Kind) -> dict[str, float]:
    """Fit, score on the held-out rows, and write ``model.safetensors``, ``features.json``,
    ``eval.jsonl`` and ``provenance.json`` into ``out_dir``."""
    from safetensors.numpy import save_file

    from ..runners.tabular_linear import LinearModel

    train, test = split(ds.y, kind, seed)
    search, name, settings = _search(kind, seed)
    search.fit(ds.x[train], ds.y[train])
    scaler, fitted = search.best_estimator_.named_steps["scale"], search.best_estimator_.named_steps["model"]
    tensors = {
        "mean": scaler.mean_,
        "scale": scaler.scale_,
        "coef": np.atleast_2d(fitted.coef_),
        "intercept": np.atleast_1d(fitted.intercept_),
    }
    tensors = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}
    save_file(tensors, str(out_dir / "model.safetensors"))
    spec = {"features": ds.features, "labels": ds.labels, "kind": kind, "model": "linear"}
    (out_dir / "features.json").write_text(json.dumps(spec, indent=1) + "\n")
    (out_dir / "eval.jsonl").write_text("".join(json.dumps(_eval_line(ds, r, kind)) + "\n" for r in test))

    served = LinearModel(tensors, kind, ds.labels, ds.features).predict(ds.x[test])
    ref = search.predict(ds.x[test]) if kind == "regression" else search.predict_proba(ds.x[test])
    ref = ref[:, 1] if kind == "binary" else ref
    assert np.allclose(served, ref, rtol=1e-9, atol=1e-9), "the runner's numpy disagrees with scikit-learn"
    metrics: dict[str, float] = {**_metrics(kind, served, ds.y[test]), "test_rows": len(test)}
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    chosen = float(search.best_params_[f"model__{name}"])
    write_provenance(
        out_dir,
        recipe=recipe,
        data=[ds.record()],
        seed=seed,
        metrics=metrics,
        params={**settings, name: chosen, "cv_best_score": round(float(search.best_score_), 4),
                "seed": seed, "test_size": TEST_SIZE},
        libraries=["scikit-learn", "numpy", "safetensors"],
    )
    return metrics
