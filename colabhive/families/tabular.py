"""tabular: predictions over named features. /auto sends it ``name=value`` records and picks
the expert whose features the record carries; ensembles combine each row's prediction."""

from __future__ import annotations

import json
from typing import Any

from ..auto.parse import Part, record_of
from ..ensemble import Rule
from ..errors import EnsembleError
from ..manifests import Manifest
from ..runners.tabular import TabularRunner
from .base import TaskFamily
from .combining import average, pick

__all__ = ["Tabular", "model_features"]


def model_features(m: Manifest) -> list[str]:
    """A tabular model's feature names, from its model directory (the gateway's view of it)."""
    if not m.source.path:
        return []
    try:
        return list(json.loads((m.resolve(m.source.path) / "features.json").read_text())["features"])
    except (OSError, ValueError, KeyError):
        return []


class Tabular(TaskFamily):
    name = "tabular"
    runner = TabularRunner
    unsupported = frozenset({"openai"})
    combine_rules = frozenset({"vote", "mean", "score_weighted"})
    auto_shape = "record"
    metrics = frozenset({"accuracy", "r2"})

    def combine(self, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
        rows = zip(*(o["predictions"] for o in outputs), strict=True)
        return {"predictions": [_row(rule, list(r), weights) for r in rows]}

    def recognise(self, text: str) -> dict[str, Any] | None:
        """At least three ``name=value`` pairs. Checked before a series: a record's values
        would otherwise read as a run of numbers."""
        record = record_of(text)
        return None if record is None else {"record": record}

    def from_object(self, obj: dict[str, Any]) -> Part | None:
        return Part(str(obj), "record", {"record": obj["record"]}) if "record" in obj else None

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        return {"record": part.payload["record"]}

    def record_features(self, m: Manifest, by_name: dict[str, Manifest]) -> list[str]:
        """The model's features; an ensemble takes its (first) member's."""
        if m.ensemble is None:
            return model_features(m)
        member = by_name.get(m.ensemble.members[0].split("@", 1)[0])
        return model_features(member) if member is not None else []


def _row(rule: Rule, preds: list[dict[str, Any]], w: list[float]) -> dict[str, Any]:
    if all("value" in p for p in preds):
        if rule == "vote":
            raise EnsembleError("regression values cannot be voted on; use mean or score_weighted")
        return {"value": average([[p["value"]] for p in preds], w)[0]}
    if not all("probabilities" in p for p in preds):
        raise EnsembleError("members disagree on the kind of prediction (a label from some, a value from others)")
    dists = [{k: float(v) for k, v in p["probabilities"].items()} for p in preds]
    label, dist = pick(rule, [p["label"] for p in preds], dists, w)
    return {"label": label, "probabilities": dist}
