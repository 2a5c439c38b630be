"""The arithmetic ensembles share: label distributions mixed and voted on, series averaged.

Families call these from their ``combine``; the rules themselves are described in
:mod:`colabhive.ensemble`. Weights arrive normalised (equal unless ``score_weighted``).
"""

from __future__ import annotations

from typing import Any

from ..ensemble import Rule
from ..errors import EnsembleError

__all__ = ["average", "combine_labels", "pick"]


def combine_labels(key: str, rule: Rule, outputs: list[dict[str, Any]], w: list[float]) -> dict[str, Any]:
    """Outputs shaped ``{key, score, top: [{key, score}]}`` (a label, a language) combined."""
    dists = [_dist(o, key) for o in outputs]
    label, dist = pick(rule, [o[key] for o in outputs], dists, w)
    top = sorted(dist.items(), key=lambda kv: -kv[1])[: max(len(o["top"]) for o in outputs)]
    return {key: label, "score": dist[label], "top": [{key: k, "score": v} for k, v in top]}


def _dist(output: dict[str, Any], key: str) -> dict[str, float]:
    """A member's probabilities as far as it reported them (its top-k); unlisted labels get 0."""
    return {t[key]: float(t["score"]) for t in output["top"]} | {output[key]: float(output["score"])}


def _mix(dists: list[dict[str, float]], w: list[float]) -> dict[str, float]:
    total = sum(w)
    labels = list(dict.fromkeys(k for d in dists for k in d))  # first-seen order: deterministic
    return {k: sum(wi * d.get(k, 0.0) for wi, d in zip(w, dists)) / total for k in labels}


def pick(rule: Rule, labels: list[str], dists: list[dict[str, float]], w: list[float]) -> tuple[str, dict[str, float]]:
    """The combined label and distribution: the weighted mixture's argmax, or under ``vote``
    the most voted label, a tie going to the one with the most summed probability."""
    mixed = _mix(dists, [1.0] * len(dists) if rule == "vote" else w)
    if rule != "vote":
        return max(mixed, key=lambda k: mixed[k]), mixed
    votes: dict[str, int] = {}
    for label in labels:
        votes[label] = votes.get(label, 0) + 1
    most = max(votes.values())
    return max((k for k, n in votes.items() if n == most), key=lambda k: mixed.get(k, 0.0)), mixed


def average(series: list[list[float]], w: list[float]) -> list[float]:
    """Element-by-element weighted mean of equally long series."""
    if len({len(s) for s in series}) != 1:
        raise EnsembleError("members answered with different lengths")
    total = sum(w)
    return [sum(wi * s[i] for wi, s in zip(w, series)) / total for i in range(len(series[0]))]
