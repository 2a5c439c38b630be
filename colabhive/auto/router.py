"""The learned router: calibrated probabilities over the catalog's functions for one vector.

Built by ``colabhive/recipes/auto_router.py`` at ``make models`` time (weights, classes,
temperature and threshold, with provenance); here it is one matrix product, so the gateway
needs no torch. Probabilities are renormalised over the functions a part may go to (its
shape's, that a node serves), which is the classifier's answer given that restriction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LearnedRouter"]

log = logging.getLogger("colabhive.auto")


@dataclass(slots=True)
class LearnedRouter:
    classes: list[str]
    weight: np.ndarray
    bias: np.ndarray
    threshold: float
    """Below this top probability the plan says it is unsure and falls back to the general model."""
    feature: str
    """What of a part is embedded: "instruction" (the ask without its payload) or "full"."""
    source: str
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def load(cls, directory: Path) -> LearnedRouter | None:
        """The router in ``directory``, or None (logged) when it was never built."""
        config = directory / "router.json"
        if not config.exists():
            log.warning("no /auto router at %s (make models builds it): routing by nearest manifest example", directory)
            return None
        from safetensors.numpy import load_file

        doc = json.loads(config.read_text())
        tensors = load_file(str(directory / "router.safetensors"))
        return cls(list(doc["classes"]), tensors["weight"].astype(np.float64), tensors["bias"].astype(np.float64),
                   float(doc["threshold"]), str(doc["feature"]), str(directory))

    def knows(self, name: str) -> bool:
        return name in self.index

    def probs(self, vector: list[float], among: list[str]) -> dict[str, float]:
        """Probability of each function in ``among`` (the ones the router was trained on)."""
        idx = [self.index[n] for n in among if n in self.index]
        if not idx:
            return {}
        z = self.weight[idx] @ np.asarray(vector, dtype=np.float64) + self.bias[idx]
        z = np.exp(z - z.max())
        p = z / z.sum()
        return {self.classes[i]: float(v) for i, v in zip(idx, p)}
