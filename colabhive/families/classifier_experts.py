"""classifier-experts: a label for a text from a group of classification heads on one encoder,
routed per call by the text's nearest centroids (:mod:`colabhive.runners.classifier_experts`).
To /auto it is a text expert like a classifier; its answers are scored like classification's
(accuracy on ``label``). The group mixes its members' label distributions itself, so no
gateway ensembles over it."""

from __future__ import annotations

from ..runners.classifier_experts import ClassifierExpertsRunner
from .base import TaskFamily

__all__ = ["ClassifierExpertGroup"]


class ClassifierExpertGroup(TaskFamily):
    name = "classifier-experts"
    runner = ClassifierExpertsRunner
    unsupported = frozenset({"ensemble", "openai"})
    auto_shape = "text"
    metrics = frozenset({"accuracy"})
