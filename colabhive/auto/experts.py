"""Choosing the expert: the request's shape narrows the tasks, the catalog's own embedding
model ranks the experts.

Every expert (the default version of each function) is described by its manifest: the
``examples`` its deployer wrote, its description and its domains. Those texts are embedded
once with the catalog's embedding function (through the hive, like any call) and kept
until the catalog changes. A request is embedded the same way; an expert's score is the
best cosine between the request and its texts. Below ``threshold`` the request goes to the
general model of the task that scored best (a manifest with ``options.general = true``,
or the task's only function), and the plan says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..manifests import Manifest

__all__ = ["Choice", "ExpertIndex", "SHAPE_TASKS"]

SHAPE_TASKS = {"series": {"forecasting"}, "record": {"tabular"}, "ranking": {"rerank"}}
"""Payload shapes that fix the task before any model looks at the words."""
TEXT_TASKS = {"classification", "language", "translation", "generation", "embedding", "rerank"}
GENERAL_TASK = "generation"
THRESHOLD = 0.30
MARGIN = 0.08
"""A specialist must beat its task's general model by this much to be chosen over it."""

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


@dataclass(slots=True)
class Choice:
    manifest: Manifest
    confidence: float
    fallback: bool
    why: str
    scores: dict[str, float]


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)) or 1.0)


def _texts(m: Manifest) -> list[str]:
    return [*m.examples, m.description, *(f"{d} {m.task}" for d in m.domains)]


def _features(m: Manifest) -> set[str]:
    """A tabular expert's feature names (from its model directory), lower-cased."""
    if not m.source.path:
        return set()
    path = m.resolve(m.source.path) / "features.json"
    try:
        names = json.loads(path.read_text())["features"]
    except (OSError, ValueError, KeyError):
        return set()
    return {n.lower().replace("_", " ") for n in names} | {n.lower() for n in names}


class ExpertIndex:
    def __init__(self, experts: list[Manifest], embed: Embed, served: Callable[[str], bool] = lambda ref: True) -> None:
        self.experts = [m for m in experts if m.task != "echo"]
        self.served = served
        """Whether a node holds that version now: experts nobody serves are passed over."""
        self.embed = embed
        self.vectors: dict[str, list[list[float]]] = {}
        self.features = {m.name: _features(m) for m in self.experts if m.task == "tabular"}

    async def warm(self) -> None:
        if self.vectors:
            return
        texts, owners = [], []
        for m in self.experts:
            for t in _texts(m):
                if t.strip():
                    texts.append(t)
                    owners.append(m.name)
        vecs = await self.embed(texts)
        for name, v in zip(owners, vecs):
            self.vectors.setdefault(name, []).append(v)

    def _general(self, task: str) -> Manifest | None:
        of_task = [m for m in self.experts if m.task == task]
        flagged = [m for m in of_task if m.options.get("general") is True]
        return (flagged or (of_task if len(of_task) == 1 else []) or [None])[0]

    def _by_features(self, record: dict[str, Any]) -> Choice | None:
        keys = {k.lower() for k in record} | {k.lower().replace("_", " ") for k in record}
        overlap = {name: len(keys & feats) / max(1, len(record)) for name, feats in self.features.items()}
        if not overlap or max(overlap.values()) == 0:
            return None
        name = max(overlap, key=lambda n: overlap[n])
        m = next(e for e in self.experts if e.name == name)
        return Choice(m, round(overlap[name], 3), False, f"the record's fields match {name}'s features "
                      f"({overlap[name]:.0%})", {k: round(v, 3) for k, v in overlap.items()})

    async def choose(self, shape: str, text: str, payload: dict[str, Any]) -> Choice:
        if shape == "record" and (c := self._by_features(payload["record"])) is not None:
            return c
        await self.warm()
        tasks = SHAPE_TASKS.get(shape, TEXT_TASKS)
        (vec,) = await self.embed([text])
        pool = [m for m in self.experts if m.task in tasks]
        pool = [m for m in pool if self.served(m.ref)] or pool  # dry runs still plan on an empty hive
        scores = {m.name: max(_cos(vec, v) for v in self.vectors.get(m.name, [[0.0]])) for m in pool}
        if not scores:
            raise LookupError(f"no expert in the catalog handles {shape} requests")
        best = max(scores, key=lambda n: scores[n])
        m = next(e for e in self.experts if e.name == best)
        rounded = {k: round(v, 3) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:5]}
        general = self._general(m.task)
        if general is not None and general.name != best and general.name in scores:
            gap = scores[best] - scores[general.name]
            if gap < MARGIN:  # a specialist only when the request is clearly its kind
                return Choice(general, round(scores[general.name], 3), False,
                              f"{m.task}: the specialist {best} is only {gap:.2f} closer than the general "
                              f"{general.name}, so the general one", rounded)
        if scores[best] >= THRESHOLD or shape != "text":
            return Choice(m, round(scores[best], 3), False, f"closest to {best}'s examples (cosine {scores[best]:.2f})",
                          rounded)
        general = general if general is not None and general.name != best else self._general(GENERAL_TASK)
        if general is None:
            return Choice(m, round(scores[best], 3), False, f"closest to {best} (cosine {scores[best]:.2f}, low)",
                          rounded)
        return Choice(general, round(scores[best], 3), True,
                      f"no expert is confident (best {best} at {scores[best]:.2f} < {THRESHOLD}); "
                      f"using the general model {general.name}", rounded)


