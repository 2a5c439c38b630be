"""tabular: predictions over named features from a gradient-boosted tree model (LightGBM) or
a linear one.

The model directory holds ``features.json``: the feature order the model was trained with,
the class names, the kind (``binary``, ``multiclass`` or ``regression``) and the model
family. Without a ``"model"`` key it is LightGBM, read from its native text model
(``model.txt``); with ``"model": "linear"`` it is a standardised linear model (logistic or
ridge) in ``model.safetensors``, predicted with numpy (:mod:`.tabular_linear`). Callers
send features by name, never by position, so a reordered or misspelt column is caught (a
422 naming it) instead of silently shifting every value one slot over.

A missing feature is a 422 too, unless the manifest sets ``options.allow_missing = true``:
then it goes to the model as NaN. LightGBM's trees route it down the branch learned for
missing values; the linear model imputes the training mean (a standardised 0, so the
feature adds nothing). Strict is the default because a forgotten column usually means a
caller bug, and a prediction made without it looks just as confident.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..errors import InvalidInput
from .base import Runner, source_path

__all__ = ["MAX_RECORDS", "Prediction", "TabularInput", "TabularOutput", "TabularRunner"]

MAX_RECORDS = 1024

Record = dict[str, float]


class TabularInput(msgspec.Struct, forbid_unknown_fields=True):
    record: Annotated[Record, Meta(description="One row: feature name → value.")] | None = None
    records: Annotated[list[Record], Meta(min_length=1, max_length=MAX_RECORDS)] | None = None
    """Several rows; give either ``record`` or ``records``."""


class Prediction(msgspec.Struct, omit_defaults=True):
    label: str | None = None
    """Classification: the most probable class."""
    probabilities: dict[str, float] | None = None
    """Classification: every class's probability, in the model's class order."""
    value: float | None = None
    """Regression: the predicted value."""


class TabularOutput(msgspec.Struct):
    predictions: list[Prediction]
    """One per row, in the order the rows were sent."""


class TabularRunner(Runner):
    Output = TabularOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return TabularInput

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spec: dict[str, Any] | None = None
        self._known: frozenset[str] = frozenset()

    @property
    def spec(self) -> dict[str, Any]:
        """``features.json``; read on first use, so ``check`` works on a runner not yet loaded."""
        if self._spec is None:
            self._spec = json.loads((source_path(self.manifest) / "features.json").read_text())
            self._known = frozenset(self._spec["features"])
        return self._spec

    def check(self, inp: Any) -> None:
        if (inp.record is None) == (inp.records is None):
            both = inp.record is not None
            raise InvalidInput(
                "give `record` (one row) or `records` (a list), not both" if both else "give `record` or `records`",
                field="records" if both else "record",
            )
        if inp.record is not None:
            rows = [("record", inp.record)]
        else:
            rows = [(f"records.{i}", r) for i, r in enumerate(inp.records)]
        features: list[str] = self.spec["features"]
        strict = not self.manifest.options.get("allow_missing", False)
        for where, row in rows:
            for name in row:
                if name not in self._known:
                    raise InvalidInput(
                        f"unknown feature `{name}`; the model knows {len(features)}: {_listing(features)}",
                        field=f"{where}.{name}",
                    )
            if strict and len(row) < len(features):
                missing = [f for f in features if f not in row]
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise InvalidInput(f"missing feature `{missing[0]}`{more}", field=f"{where}.{missing[0]}")

    def load(self) -> None:
        spec, root = self.spec, source_path(self.manifest)
        model = spec.get("model", "lightgbm")
        if model == "linear":
            from .tabular_linear import LinearModel

            self._predict = LinearModel.load(root / "model.safetensors", spec).predict
        elif model == "lightgbm":
            import lightgbm as lgb

            booster = lgb.Booster(model_file=str(root / "model.txt"))
            if booster.num_feature() != len(spec["features"]):
                n = len(spec["features"])
                raise ValueError(f"model.txt has {booster.num_feature()} features, features.json {n}")
            threads = int(self.manifest.options.get("threads", 1))
            self._predict = lambda x: booster.predict(x, num_threads=threads)
        else:
            raise ValueError(f"features.json: unknown model {model!r} (lightgbm or linear)")

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        import numpy as np

        features: list[str] = self.spec["features"]
        rows = [r for i in inputs for r in ([i.record] if i.record is not None else i.records)]
        x = np.array([[row.get(f, np.nan) for f in features] for row in rows], dtype=np.float64)
        raw = self._predict(x)  # every call's rows in one pass
        preds = [self._prediction(p) for p in raw]
        out: list[msgspec.Struct] = []
        start = 0
        for i in inputs:
            n = 1 if i.record is not None else len(i.records)
            out.append(TabularOutput(predictions=preds[start : start + n]))
            start += n
        return out

    def _prediction(self, raw: Any) -> Prediction:
        kind, labels = self.spec["kind"], self.spec["labels"]
        if kind == "regression":
            return Prediction(value=float(raw))
        probs = [1.0 - float(raw), float(raw)] if kind == "binary" else [float(p) for p in raw]
        best = max(range(len(probs)), key=probs.__getitem__)  # ties go to the first class
        return Prediction(label=labels[best], probabilities=dict(zip(labels, probs)))


def _listing(names: list[str], shown: int = 8) -> str:
    head = ", ".join(f"`{n}`" for n in names[:shown])
    return head + (f", … ({len(names) - shown} more)" if len(names) > shown else "")
