"""classification: a label for a text. Ensembles vote on or average its labels' probabilities."""

from __future__ import annotations

from typing import Any

from ..ensemble import Rule
from ..runners.classification import ClassificationRunner
from .base import TaskFamily
from .combining import combine_labels

__all__ = ["Classification"]


class Classification(TaskFamily):
    name = "classification"
    runner = ClassificationRunner
    unsupported = frozenset({"openai"})
    combine_rules = frozenset({"vote", "mean", "score_weighted"})
    auto_shape = "text"
    metrics = frozenset({"accuracy"})

    def combine(self, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
        return combine_labels("label", rule, outputs, weights)
