"""Ensembles: several experts answer the same input and one declared rule combines them.

An ensemble is a manifest with an ``[ensemble]`` table: its members (function names, or
``name@version`` to pin one) all share the ensemble's ``task``, so a caller sends the input
it would send any member and gets the same output shape back, plus an ``ensemble`` object
saying what each member answered and with what weight. It runs on the gateway (members are
ordinary calls, placed and traced like any other), so no node ever loads it.

Rules:

- ``vote``: each member's label counts once; a tie goes to the tied label with the most
  summed probability, so the answer never depends on member order. For labelling outputs only.
- ``mean``: probability distributions, values and forecasts (point and quantiles, element by
  element) are averaged with equal weights; the label is the averaged distribution's argmax.
- ``score_weighted``: the same averages, weighted by each member's latest evaluation on the
  hive (inverted for lower-is-better metrics such as ``mae_ratio``), so a better-measured
  member counts for more. Members not evaluated yet take the mean weight of those that are
  (all equal when none is), and the answer says so.

The combined ``score``/``probabilities`` stay probabilities: under ``vote`` a label's score
is its mean probability over the members, not its share of votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .errors import EnsembleError

__all__ = ["COMBINABLE", "Ensemble", "EnsembleError", "combine", "weights_for"]

Rule = Literal["vote", "mean", "score_weighted"]

COMBINABLE: dict[str, frozenset[str]] = {
    "classification": frozenset({"vote", "mean", "score_weighted"}),
    "language": frozenset({"vote", "mean", "score_weighted"}),
    "tabular": frozenset({"vote", "mean", "score_weighted"}),
    "forecasting": frozenset({"mean", "score_weighted"}),
}
"""Tasks whose outputs can be combined, and by which rules (a forecast has no label to vote on)."""


class Ensemble(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    members: Annotated[
        list[Annotated[str, Meta(min_length=1)]],
        Meta(min_length=2, max_length=8, description="Functions (name, or name@version) answering each input."),
    ]
    combine: Rule
    quorum: Annotated[int, Meta(ge=1, description="Members that must answer; fewer is a 502.")] = 1


def weights_for(scores: Sequence[tuple[float, bool] | None]) -> tuple[list[float], str]:
    """Each member's weight from its evaluation ``(score, lower_is_better)``, and how they were set."""
    raw = [None if s is None else (1.0 / max(s[0], 1e-9) if s[1] else max(s[0], 0.0)) for s in scores]
    known = [w for w in raw if w is not None]
    if not known or sum(known) <= 0:
        return [1.0] * len(scores), "equal: no member has an evaluation on the hive yet"
    fill = sum(known) / len(known)
    why = "each member's latest evaluation score on the hive"
    if len(known) < len(raw):
        why += "; members not evaluated yet take the mean weight of the others"
    return [fill if w is None else w for w in raw], why


def combine(task: str, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
    """One output in the members' own shape from theirs (only members that answered)."""
    if not outputs:
        raise EnsembleError("no member answered")
    w = [1.0] * len(outputs) if rule != "score_weighted" else _normal(weights)
    if task in ("classification", "language"):
        key = "label" if task == "classification" else "language"
        dists = [_dist(o, key) for o in outputs]
        label, dist = _pick(rule, [o[key] for o in outputs], dists, w)
        top = sorted(dist.items(), key=lambda kv: -kv[1])[: max(len(o["top"]) for o in outputs)]
        return {key: label, "score": dist[label], "top": [{key: k, "score": v} for k, v in top]}
    if task == "tabular":
        rows = zip(*(o["predictions"] for o in outputs), strict=True)
        return {"predictions": [_tabular_row(rule, list(r), w) for r in rows]}
    if task == "forecasting":
        if rule == "vote":
            raise EnsembleError("a forecast has no label to vote on; use mean or score_weighted")
        levels = sorted(set.intersection(*(set(o["quantiles"]) for o in outputs)), key=float)
        return {
            "forecast": _avg([o["forecast"] for o in outputs], w),
            "quantiles": {lv: _avg([o["quantiles"][lv] for o in outputs], w) for lv in levels},
            "model": "ensemble(" + ", ".join(str(o.get("model", "?")) for o in outputs) + ")",
        }
    raise EnsembleError(f"outputs of task {task!r} cannot be combined")


def _normal(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [x / total for x in weights] if total > 0 else [1.0 / len(weights)] * len(weights)


def _dist(output: dict[str, Any], key: str) -> dict[str, float]:
    """A member's probabilities as far as it reported them (its top-k); unlisted labels get 0."""
    return {t[key]: float(t["score"]) for t in output["top"]} | {output[key]: float(output["score"])}


def _mix(dists: list[dict[str, float]], w: list[float]) -> dict[str, float]:
    total = sum(w)
    labels = list(dict.fromkeys(k for d in dists for k in d))  # first-seen order: deterministic
    return {k: sum(wi * d.get(k, 0.0) for wi, d in zip(w, dists)) / total for k in labels}


def _pick(
    rule: Rule, labels: list[str], dists: list[dict[str, float]], w: list[float]
) -> tuple[str, dict[str, float]]:
    mixed = _mix(dists, [1.0] * len(dists) if rule == "vote" else w)
    if rule != "vote":
        return max(mixed, key=lambda k: mixed[k]), mixed
    votes: dict[str, int] = {}
    for label in labels:
        votes[label] = votes.get(label, 0) + 1
    most = max(votes.values())
    return max((k for k, n in votes.items() if n == most), key=lambda k: mixed.get(k, 0.0)), mixed


def _tabular_row(rule: Rule, preds: list[dict[str, Any]], w: list[float]) -> dict[str, Any]:
    if all("value" in p for p in preds):
        if rule == "vote":
            raise EnsembleError("regression values cannot be voted on; use mean or score_weighted")
        return {"value": _avg([[p["value"]] for p in preds], w)[0]}
    if not all("probabilities" in p for p in preds):
        raise EnsembleError("members disagree on the kind of prediction (a label from some, a value from others)")
    dists = [{k: float(v) for k, v in p["probabilities"].items()} for p in preds]
    label, dist = _pick(rule, [p["label"] for p in preds], dists, w)
    return {"label": label, "probabilities": dist}


def _avg(series: list[list[float]], w: list[float]) -> list[float]:
    if len({len(s) for s in series}) != 1:
        raise EnsembleError("members answered with different lengths")
    total = sum(w)
    return [sum(wi * s[i] for wi, s in zip(w, series)) / total for i in range(len(series[0]))]
