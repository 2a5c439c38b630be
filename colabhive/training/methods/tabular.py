"""tabular: LightGBM from scratch on named feature columns, one boosting round per step.

There is no gradient optimizer here, so the common interface maps onto boosting: a ``step``
adds one tree (``Booster.update``); ``loss`` is the training objective after it (log-loss or
L2); ``lr`` is the shrinkage; ``grad_norm`` does not apply (None); ``items`` is the rows each
round sees (all of them). A checkpoint is the model so far (LightGBM's text format) plus the
counters; resuming rebuilds the booster from it and keeps adding trees. Row and feature
subsampling are off (``deterministic``, one thread), so a tree depends only on the trees
before it and a resumed run grows the same trees as an uninterrupted one.

Export is the tabular runner's directory: ``model.txt`` and ``features.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from msgspec import Meta

from ..errors import CheckpointError, TrainingError
from .base import STATE_FILE, Method, Trainer, read_state, register

__all__ = ["METHOD", "TabularHParams", "TabularMethod", "TabularTrainer"]

Kind = Literal["binary", "multiclass", "regression"]


class TabularHParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Kind | None = None
    """None: regression when the target is a number, else binary or multiclass by label count."""
    features: Annotated[list[str], Meta(min_length=1)] | None = None
    """Feature columns in model order; default every column but the target, as in the first row."""
    labels: Annotated[list[str], Meta(min_length=2)] | None = None
    """Class names in model order; default the sorted labels of the training rows."""
    num_leaves: Annotated[int, Meta(ge=2, le=4096)] = 7
    learning_rate: Annotated[float, Meta(gt=0, le=1)] = 0.05
    min_data_in_leaf: Annotated[int, Meta(ge=1)] = 10
    lambda_l2: Annotated[float, Meta(ge=0)] = 1.0


class TabularTrainer(Trainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.feature_names: list[str] = []
        super().__init__(*args, **kwargs)
        import lightgbm as lgb

        self.lgb = lgb
        hp = self.hparams
        targets = [r["target"] for r in self.rows]
        numeric = all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in targets)
        self.labels = list(hp.labels) if hp.labels else (None if numeric and hp.kind in (None, "regression")
                                                          else sorted({str(t) for t in targets}))
        self.kind: str = hp.kind or ("regression" if self.labels is None else
                                     "binary" if len(self.labels) == 2 else "multiclass")
        if self.kind == "regression":
            self.labels = None
        self.x = np.array([[r[f] for f in self.feature_names] for r in self.rows], dtype=np.float64)
        self.y = self._targets(targets)
        self.params = self._params()
        self.booster = lgb.Booster(self.params, lgb.Dataset(self.x, self.y, free_raw_data=False))

    def row(self, raw: dict[str, Any], i: int) -> dict[str, Any]:
        if not self.feature_names:
            target = self.columns["target"]
            self.feature_names = list(self.hparams.features or [k for k in raw if k != target])
        out = super().row(raw, i)
        for f in self.feature_names:
            v = raw.get(f)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise TrainingError(f"row {i}: feature {f!r} is {v!r}, not a number", field="hparams.features")
            out[f] = float(v)
        return out

    def _targets(self, targets: list[Any]) -> np.ndarray:
        if self.labels is None:
            return np.array(targets, dtype=np.float64)
        index = {x: k for k, x in enumerate(self.labels)}
        if unknown := sorted({str(t) for t in targets} - set(index)):
            raise TrainingError(f"targets not in hparams.labels: {unknown[:5]}", field="hparams.labels")
        return np.array([index[str(t)] for t in targets], dtype=np.float64)

    def _params(self) -> dict[str, Any]:
        hp = self.hparams
        p: dict[str, Any] = {
            "objective": self.kind, "num_leaves": hp.num_leaves, "learning_rate": hp.learning_rate,
            "min_data_in_leaf": hp.min_data_in_leaf, "lambda_l2": hp.lambda_l2, "seed": self.seed,
            "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbose": -1,
        }
        if self.kind == "multiclass":
            p["num_class"] = len(self.labels or [])
        return p

    def step(self) -> dict[str, Any]:
        self.booster.update()
        self.step_count += 1
        self.samples_seen += len(self.rows)
        (_, metric, loss, _), *_ = self.booster.eval_train()
        return {"step": self.step_count, "loss": float(loss), "metric": metric, "lr": self.hparams.learning_rate,
                "grad_norm": None, "items": len(self.rows), "tokens": 0,
                "samples_seen": self.samples_seen, "tokens_seen": 0}

    def save_checkpoint(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.txt").write_text(self.booster.model_to_string())
        state = {"method": "tabular", "seed": self.seed, "hparams": msgspec.to_builtins(self.hparams),
                 **self.counters()}
        (path / STATE_FILE).write_text(json.dumps(state))

    def load_checkpoint(self, path: Path) -> None:
        state = read_state(path)
        if state["method"] != "tabular" or state["seed"] != self.seed:
            raise CheckpointError(f"{path} is not this run's checkpoint")
        lgb = self.lgb
        done = lgb.Booster(model_str=(path / "model.txt").read_text())
        if done.current_iteration() != state["step"]:
            raise CheckpointError(f"{path}: model has {done.current_iteration()} rounds, state says {state['step']}")
        # what lgb.train(init_model=...) does before its first round, without running one: the
        # dataset starts from the saved model's scores and the new booster holds its trees
        from lightgbm.basic import _InnerPredictor

        ds = lgb.Dataset(self.x, self.y, free_raw_data=False)
        ds._update_params(self.params)._set_predictor(
            _InnerPredictor.from_booster(booster=done, pred_parameter=dict(done.params, **self.params)))
        self.booster = lgb.Booster(self.params, ds)
        if self.booster.current_iteration() != state["step"]:
            raise CheckpointError(f"{path}: resumed booster has {self.booster.current_iteration()} rounds")
        self.step_count, self.samples_seen = state["step"], state["samples_seen"]

    def eval_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lines = []
        for r in rows:
            expected: Any = float(r["target"]) if self.kind == "regression" else str(r["target"])
            lines.append({"input": {"record": {f: r[f] for f in self.feature_names}}, "expected": expected})
        return lines

    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = np.array([[i["record"][f] for f in self.feature_names] for i in inputs], dtype=np.float64)
        raw = self.booster.predict(x, num_threads=1)
        if self.kind == "regression":
            return [{"predictions": [{"value": float(v)}]} for v in raw]
        probs = np.column_stack([1 - raw, raw]) if self.kind == "binary" else raw
        labels = self.labels or []
        return [{"predictions": [{"label": labels[int(np.argmax(p))]}]} for p in probs]

    def export(self, out: Path) -> dict[str, Any]:
        self.booster.save_model(str(out / "model.txt"))
        spec = {"features": self.feature_names, "labels": self.labels, "kind": self.kind}
        (out / "features.json").write_text(json.dumps(spec, indent=1) + "\n")
        return {"source": {"path": "."}, "options": {"allow_missing": False, "threads": 1}}


@register
class TabularMethod(Method):
    name = "tabular"
    task = "tabular"
    HParams = TabularHParams
    Trainer = TabularTrainer
    roles = ("target",)
    needs_base = False
    optimizers = frozenset()
    default_optimizer = None
    metrics = frozenset({"accuracy", "r2"})

    @classmethod
    def eval_field(cls, metric: str, trainer: Any = None) -> str:
        return "predictions.0.value" if metric == "r2" else "predictions.0.label"


METHOD = TabularMethod
