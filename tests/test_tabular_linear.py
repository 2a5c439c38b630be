"""The tabular runner's linear backend and the recipes that train it, in process (fast: tiny fits).

The numpy prediction must be scikit-learn's, to rounding; the linear recipes must hold out
exactly the LightGBM recipes' rows (so the two families are scored, and can be combined, on
the same rows); a seeded rebuild must give the shipped files byte for byte. Through a hive,
the catalog's two linear functions are tests/test_tabular.py's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hivectl import MANIFESTS, ROOT

from colabhive.manifests import read_manifest
from colabhive.recipes import recipe
from colabhive.recipes.provenance import file_sha256
from colabhive.recipes.tabular_common import load
from colabhive.runners.tabular import TabularInput, TabularRunner
from colabhive.runners.tabular_linear import LinearModel
from colabhive.wire import Device

MODELS = ROOT / "models"
PAIRS = {"tabular-breast-cancer-linear": "tabular-breast-cancer", "tabular-diabetes-linear": "tabular-diabetes"}


def _fit(loader: str, kind: str) -> tuple[Any, LinearModel, np.ndarray]:
    """A small scikit-learn pipeline on 120 rows, the same weights as a LinearModel, and 15 unseen rows."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = load(loader, None if kind == "regression" else [f"c{i}" for i in range(len(np.unique(load(loader).y)))])
    rows = np.random.default_rng(0).permutation(len(ds.y))
    fit, rest = rows[:120], rows[120:135]
    pipe = make_pipeline(StandardScaler(), Ridge(alpha=3.0) if kind == "regression" else LogisticRegression(C=0.5))
    pipe.fit(ds.x[fit], ds.y[fit])
    scaler, model = pipe[0], pipe[-1]
    tensors = {"mean": scaler.mean_, "scale": scaler.scale_, "coef": np.atleast_2d(model.coef_),
               "intercept": np.atleast_1d(model.intercept_)}
    return pipe, LinearModel(tensors, kind, ds.labels, ds.features), ds.x[rest]


@pytest.mark.parametrize(("loader", "kind"), [
    ("load_breast_cancer", "binary"), ("load_wine", "multiclass"), ("load_diabetes", "regression"),
])
def test_numpy_prediction_is_scikit_learns(loader: str, kind: str) -> None:
    pipe, linear, x = _fit(loader, kind)
    got = linear.predict(x)
    if kind == "regression":
        np.testing.assert_allclose(got, pipe.predict(x), rtol=1e-12, atol=1e-9)
        return
    want = pipe.predict_proba(x)
    if kind == "binary":  # P(second label), as LightGBM's binary objective gives it
        assert got.shape == (len(x),)
        want = want[:, 1]
    else:
        assert got.shape == want.shape == (len(x), 3)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert len(set(pipe.predict(x))) > 1  # the rows are not all one class: a real comparison


def test_extreme_scores_do_not_overflow() -> None:
    _, linear, x = _fit("load_breast_cancer", "binary")
    far = np.vstack([x[0] + 1e6 * linear.scale * linear.coef[0], x[0] - 1e6 * linear.scale * linear.coef[0]])
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is the right answer
        p = linear.predict(far)
    assert p.tolist() == [1.0, 0.0]


def test_a_missing_feature_is_the_training_mean() -> None:
    _, linear, x = _fit("load_diabetes", "regression")
    gap, at_mean = x[:3].copy(), x[:3].copy()
    gap[:, 2], at_mean[:, 2] = np.nan, linear.mean[2]
    np.testing.assert_allclose(linear.predict(gap), linear.predict(at_mean), rtol=1e-12)
    assert not np.allclose(linear.predict(gap), linear.predict(x[:3]))  # bmi matters


def test_weights_that_do_not_fit_the_features_fail_to_load() -> None:
    _, linear, _ = _fit("load_wine", "multiclass")
    good = {"mean": linear.mean, "scale": linear.scale, "coef": linear.coef, "intercept": linear.intercept}
    features, labels = [f"f{i}" for i in range(13)], ["a", "b", "c"]
    cases = [
        ({k: v for k, v in good.items() if k != "intercept"}, "lacks intercept"),
        ({**good, "coef": good["coef"][:2]}, "`coef` is (2, 13)"),
        ({**good, "scale": np.zeros(13)}, "`scale` must be finite and positive"),
    ]
    for tensors, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            LinearModel(tensors, "multiclass", labels, features)
    with pytest.raises(ValueError, match="`mean` is"):
        LinearModel(good, "multiclass", labels, features[:12])


@pytest.mark.parametrize("linear", sorted(PAIRS))
def test_eval_rows_are_the_lightgbm_recipes(linear: str) -> None:
    """Same split, same rows, same order: the two eval files are identical byte for byte."""
    ours, theirs = (MODELS / linear / "eval.jsonl").read_bytes(), (MODELS / PAIRS[linear] / "eval.jsonl").read_bytes()
    assert ours.count(b"\n") in (143, 111)
    assert ours == theirs


def test_seeded_rebuild_is_byte_identical(tmp_path: Path) -> None:
    """Both recipes rebuilt here (about 2 s) give the shipped files and metrics exactly."""
    for name in sorted(PAIRS):
        out = tmp_path / name
        out.mkdir()
        metrics = recipe(name).build(out, 0)
        shipped = json.loads((MODELS / name / "provenance.json").read_text())
        rebuilt = {f: file_sha256(out / f) for f in ("eval.jsonl", "features.json", "model.safetensors")}
        assert rebuilt == shipped["artifact"]["files"], name
        assert metrics == shipped["metrics"]
        assert json.loads((out / "provenance.json").read_text())["params"] == shipped["params"]
        assert ("C" if "cancer" in name else "alpha") in shipped["params"]


def _runner(tmp_path: Path, fn: str, **options: Any) -> tuple[TabularRunner, Path]:
    """The catalog's manifest for ``fn`` over a copy of its model directory, ``options`` applied."""
    m, problems = read_manifest(MANIFESTS / f"{fn}.toml")
    assert m is not None and not problems, problems
    model = shutil.copytree(MODELS / fn, tmp_path / fn)
    m = msgspec.structs.replace(m, options={**m.options, **options},
                                source=msgspec.structs.replace(m.source, path=str(model)))
    return TabularRunner(m, Device(kind="cpu"), "fp32"), model


def test_allow_missing_imputes_the_mean_in_the_runner(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    runner, model = _runner(tmp_path, "tabular-diabetes-linear", allow_missing=True)
    runner.load()
    mean = dict(zip(runner.spec["features"], load_file(str(model / "model.safetensors"))["mean"]))
    row = json.loads((model / "eval.jsonl").read_text().splitlines()[0])["input"]["record"]
    inputs = [TabularInput(records=[{k: v for k, v in row.items() if k != "bmi"}, {**row, "bmi": float(mean["bmi"])},
                                    {}])]
    runner.check(inputs[0])
    gap, at_mean, nothing = runner.run(inputs)[0].predictions
    assert gap.value == pytest.approx(at_mean.value, rel=1e-12)
    assert nothing.value == pytest.approx(float(load_file(str(model / "model.safetensors"))["intercept"][0]))


def test_an_unknown_model_family_fails_to_load(tmp_path: Path) -> None:
    runner, model = _runner(tmp_path, "tabular-breast-cancer-linear")
    spec = json.loads((model / "features.json").read_text())
    (model / "features.json").write_text(json.dumps({**spec, "model": "svm"}))
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        runner.load()
