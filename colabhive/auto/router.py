"""The learned router: calibrated probabilities over the catalog's functions for one part.

Built by ``colabhive/recipes/auto_router.py`` at ``make models`` time, with provenance. Two heads,
tried in turn (a cascade): the *fast* head reads features the gateway computes itself (the
distilled static MiniLM table and n-grams: no node call, about 2 ms); when its top probability is
below ``escalate_below`` (chosen on dev) the *full* head, on the part's MiniLM vector from the
catalog's embedding function (through the hive), decides. Either is one sparse product here, so
the gateway needs no torch. Probabilities are renormalised over the functions a part may go to
(its shape's, that a node serves): the classifier's answer given that restriction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from .features import CHAR_FEATURES, WORD_FEATURES, Featuriser
from .static_embed import TABLE_FILE, StaticEmbedder

__all__ = ["Head", "LearnedRouter"]

log = logging.getLogger("colabhive.auto")


@dataclass(slots=True)
class Head:
    featuriser: Featuriser
    weight: np.ndarray
    bias: np.ndarray
    static: StaticEmbedder | None = None
    slices: list[np.ndarray] = field(default_factory=list)
    """The weights transposed and cut at the sentence vector's end (contiguous): the n-grams' rows
    are then picked by column, no sparse product."""

    def __post_init__(self) -> None:
        dim = self.weight.shape[1] - (WORD_FEATURES + CHAR_FEATURES if self.featuriser.ngrams else 0)
        self.slices = [np.ascontiguousarray(self.weight[:, :dim].T, dtype=np.float64),
                       np.ascontiguousarray(self.weight[:, dim:].T, dtype=np.float64)]

    def probs(self, text: str, idx: list[int], vector: list[float] | None) -> np.ndarray:
        t = self.featuriser.text_of(text)
        if self.featuriser.embedding == "static":
            assert self.static is not None
            vec = self.static([t])[0]
        elif vector is not None:
            vec = np.asarray(vector, dtype=np.float64)
        else:
            raise ValueError("this head needs the part's MiniLM vector")
        dense, grams = self.slices
        z = self.bias.astype(np.float64) + vec @ dense
        if self.featuriser.ngrams:
            cols, vals = self.featuriser.grams(text)
            if len(cols):
                z = z + vals @ grams[cols]
        z = z[idx]
        z = np.exp(z - z.max())
        return z / z.sum()


@dataclass(slots=True)
class LearnedRouter:
    classes: list[str]
    heads: dict[str, Head]
    """"fast" (gateway features) and/or "full" (MiniLM through the hive)."""
    threshold: float
    """Below this top probability the plan says it is unsure and falls back to the general model."""
    escalate_below: float
    """The fast head's top probability under which the full head is asked (when there is one)."""
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
        heads: dict[str, Head] = {}
        for name, spec in doc["heads"].items():
            f = Featuriser(spec["embedding"], spec["text"], bool(spec["ngrams"]))
            static = None
            if f.embedding == "static":
                if not (directory / TABLE_FILE).exists():
                    log.warning("the /auto router at %s lacks its static table: rebuild it (make models)", directory)
                    return None
                static = StaticEmbedder.load(directory)
            heads[name] = Head(f, tensors[f"{name}.weight"], tensors[f"{name}.bias"], static)
        return cls(list(doc["classes"]), heads, float(doc["threshold"]), float(doc["escalate_below"]),
                   str(directory))

    @property
    def full_text(self) -> str:
        """What of a part the full head embeds ("full" or "instruction")."""
        head = self.heads.get("full")
        return head.featuriser.text if head else "full"

    def knows(self, name: str) -> bool:
        return name in self.index

    def first(self, text: str, among: list[str]) -> tuple[dict[str, float], bool]:
        """The fast head's probabilities (empty when there is none) and whether to ask the full head."""
        idx = [self.index[n] for n in among if n in self.index]
        if not idx:
            return {}, False
        if "fast" not in self.heads:
            return {}, True
        p = self.heads["fast"].probs(text, idx, None)
        return ({self.classes[i]: float(v) for i, v in zip(idx, p)},
                "full" in self.heads and float(p.max()) < self.escalate_below)

    def full(self, text: str, among: list[str], vector: list[float]) -> dict[str, float]:
        idx = [self.index[n] for n in among if n in self.index]
        if not idx:
            return {}
        p = self.heads["full"].probs(text, idx, vector)
        return {self.classes[i]: float(v) for i, v in zip(idx, p)}

    def describe(self) -> str:
        """For the log: which heads, and when the full one is asked."""
        heads = ", ".join(f"{name} {h.featuriser.name}" for name, h in self.heads.items())
        return f"{heads}; full head under p={self.escalate_below}, unsure under p={self.threshold}"
