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

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .. import families
from ..errors import HiveError
from ..manifests import Manifest
from .parse import instruction_of, record_for, wants_ensemble
from .router import LearnedRouter

__all__ = ["Choice", "ExpertIndex", "record_features", "same_records"]

MIN_FEATURES = 5
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
THRESHOLD = 0.35
TIE = 0.02
"""Experts of one task scoring within this of each other are told apart by their evaluations."""
MARGIN = 0.08
"""A specialist must beat its task's general model by this much to be chosen over it."""
NEWER = 0.05
"""A function the router was not trained on wins when its nearest example is this much closer
than the router's pick's: it is new since the last ``make models``."""

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


@dataclass(slots=True)
class Choice:
    manifest: Manifest
    confidence: float
    fallback: bool
    why: str
    scores: dict[str, float]
    payload: dict[str, Any] | None = None
    """Set when choosing the expert also read the payload (a tabular record)."""


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)) or 1.0)


def _texts(m: Manifest) -> list[str]:
    return [*m.examples, m.description, *(f"{d} {m.task}" for d in m.domains)]


def _shape(m: Manifest) -> str | None:
    """The payload shape /auto sends ``m``; None for tasks it never routes to (or unknown)."""
    f = families.find(m.task)
    return f.auto_shape if f is not None else None


def same_records(manifests: list[Manifest]) -> dict[str, frozenset[str]]:
    """Record-taking function → every one taking exactly its features (itself included):
    a model, its alternatives and their ensembles. A record cannot tell them apart, so /auto
    picks among them by evaluation; the routing evaluation counts any of them as the right expert."""
    by_name = {m.name: m for m in manifests}
    feats = {m.name: tuple(sorted(f))
             for m in manifests if _shape(m) == "record" and (f := record_features(m, by_name))}
    return {n: frozenset(o for o, g in feats.items() if g == f) for n, f in feats.items()}


def record_features(m: Manifest, by_name: dict[str, Manifest]) -> list[str]:
    """The features a record-taking expert takes, as its family reads them."""
    return families.family(m.task).record_features(m, by_name)


class ExpertIndex:
    def __init__(
        self,
        experts: list[Manifest],
        embed: Embed,
        served: Callable[[str], bool] = lambda ref: True,
        language: Callable[[str], Awaitable[str | None]] | None = None,
        quality: Callable[[str], float | None] = lambda ref: None,
        features_of: Callable[[Manifest], list[str]] | None = None,
        router: LearnedRouter | None = None,
    ) -> None:
        self.router = router
        """The classifier built by ``make models``; None: nearest example alone."""
        self.quality = quality
        """An expert's latest evaluation, normalised so higher is better (None: not evaluated)."""
        self.language = language
        """The catalog's language identifier (through the hive), for a translation's direction."""
        self.experts = [m for m in experts if _shape(m) is not None]
        self.served = served
        """Whether a node holds that version now: experts nobody serves are passed over."""
        self.embed = embed
        self.vectors: dict[str, list[list[float]]] = {}
        by_name = {m.name: m for m in experts}
        features_of = features_of or (lambda m: record_features(m, by_name))
        self.features = {m.name: features_of(m) for m in self.experts if _shape(m) == "record"}

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

    def _by_features(self, text: str) -> Choice | None:
        """A record whose field names are a tabular expert's features picks that expert."""
        found: list[tuple[float, Manifest, dict[str, float]]] = []
        numbers = len(_NUMBERS.findall(text))  # a record needs a value per feature: most parts stop here
        for m in self.experts:
            feats = self.features.get(m.name)
            if not feats or numbers < min(MIN_FEATURES, len(feats)):
                continue
            record = record_for(text, feats)
            if len(record) >= min(MIN_FEATURES, len(feats)):
                found.append((len(record) / len(feats), m, record))
        if not found:
            return None
        share = max(f[0] for f in found)
        tied = [f for f in found if f[0] == share]
        served = [f for f in tied if self.served(f[1].ref)] or tied
        asked = wants_ensemble(text) and [f for f in served if f[1].ensemble is not None]
        # experts on the same features (a model, an alternative, their ensemble): the best evaluated,
        # a single model before an ensemble while none is (one call, not several)
        _, m, record = max(asked or served, key=lambda f: (
            q if (q := self.quality(f[1].ref)) is not None else float("-inf"), f[1].ensemble is None))
        why = f"the request carries {len(record)} of {m.name}'s {len(self.features[m.name])} features"
        if asked:
            why += "; it asks for several models combined, so the ensemble"
        elif len(served) > 1:
            why += f"; of the {len(served)} experts on them, the best evaluated"
        return Choice(m, round(share, 3), False, why, {f[1].name: round(f[0], 3) for f in served},
                      {"record": record})

    def _by_quality(self, best: str, m: Manifest, scores: dict[str, float]) -> tuple[str, Manifest]:
        """Experts of the same task that match about as well (within TIE): the better-evaluated one."""
        close = [e for e in self.experts
                 if e.task == m.task and e.name in scores and scores[best] - scores[e.name] <= TIE]
        rated = [(q, e) for e in close if (q := self.quality(e.ref)) is not None]
        if len(rated) < 2:
            return best, m
        _, top = max(rated, key=lambda qe: qe[0])
        return top.name, top

    async def _refined(self, m: Manifest, text: str, payload: dict[str, Any], why: str,
                       scores: dict[str, float]) -> Choice | None:
        """A better expert of m's task for this request, when its family can tell (a
        translation's direction); None when it cannot or does not."""
        peers = [e for e in self.experts if e.task == m.task]
        picked = await families.family(m.task).refine(m, peers, text, payload, self)
        if picked is None:
            return None
        e, note = picked
        return Choice(e, scores.get(e.name, 0.0), False, f"{why}; {note}", scores)

    async def choose(self, shape: str, text: str, payload: dict[str, Any]) -> Choice:
        if (c := self._by_features(text)) is not None:
            return c
        pool = [m for m in self.experts if _shape(m) == shape]  # e.g. rerank needs passages: ranking only
        pool = [m for m in pool if self.served(m.ref)] or pool  # dry runs still plan on an empty hive
        r = self.router
        if r is not None and all(r.knows(m.name) for m in pool) and not (
                wants_ensemble(text) and any(m.ensemble is not None for m in pool)):
            return await self._cascade(shape, text, payload, pool)
        await self.warm()
        full = r is not None and r.full_text == "full"
        (vec,) = await self.embed([text if full else instruction_of(text)])  # what is asked, not what it is about
        scores = {m.name: max(_cos(vec, v) for v in self.vectors.get(m.name, [[0.0]])) for m in pool}
        for fam in families.of_shape(shape) if self.router is None else ():  # asked for in so many words
            asked = [m for m in pool if m.task == fam.name]
            if asked and (why := fam.asked_for(text)) is not None:
                rounded = {k: round(v, 3) for k, v in scores.items()}
                first = asked[0]
                return (await self._refined(first, text, payload, why, rounded)
                        or Choice(first, rounded.get(first.name, 0.0), False, why, rounded))
        if not scores:
            raise LookupError(f"no expert in the catalog handles {shape} requests")
        ensembles = [m for m in pool if m.ensemble is not None and m.name in scores]
        if ensembles and wants_ensemble(text):  # said in so many words, like a translation
            m = max(ensembles, key=lambda e: scores[e.name])
            return Choice(m, round(scores[m.name], 3), False, f"the request asks for several models combined; "
                          f"{m.name} is the closest ensemble (cosine {scores[m.name]:.2f})",
                          {k: round(v, 3) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:5]})
        if self.router is not None and (c := await self._learned(shape, text, payload, vec, pool, scores)):
            return c
        best = max(scores, key=lambda n: scores[n])
        m = next(e for e in self.experts if e.name == best)
        best, m = self._by_quality(best, m, scores)
        rounded = {k: round(v, 3) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:5]}
        general = self._general(m.task)
        if general is not None and general.name != best and general.name in scores:
            gap = scores[best] - scores[general.name]
            if gap < MARGIN:  # a specialist only when the request is clearly its kind
                return Choice(general, round(scores[general.name], 3), False,
                              f"{m.task}: the specialist {best} is only {gap:.2f} closer than the general "
                              f"{general.name}, so the general one", rounded)
        if scores[best] >= THRESHOLD or shape != "text":
            why = f"closest to {best}'s examples (cosine {scores[best]:.2f})"
            refined = await self._refined(m, text, payload, why, rounded)
            return refined or Choice(m, round(scores[best], 3), False, why, rounded)
        fallback = families.general()
        if general is None or general.name == best:
            general = self._general(fallback.name) if fallback is not None else None
        if general is None:
            return Choice(m, round(scores[best], 3), False, f"closest to {best} (cosine {scores[best]:.2f}, low)",
                          rounded)
        return Choice(general, round(scores[best], 3), True,
                      f"no expert is confident (best {best} at {scores[best]:.2f} < {THRESHOLD}); "
                      f"using the general model {general.name}", rounded)



    async def _cascade(self, shape: str, text: str, payload: dict[str, Any], pool: list[Manifest]) -> Choice | None:
        """The router's fast head in the gateway; its full head (one embedding call) only when the
        fast one is unsure, or has to be (the embedding function down: the fast answer stands)."""
        assert self.router is not None
        names = [m.name for m in pool]
        probs, escalate = self.router.first(text, names)
        how = "fast"
        if escalate:
            try:
                (vec,) = await self.embed([text if self.router.full_text == "full" else instruction_of(text)])
                probs, how = self.router.full(text, names, vec), "full"
            except HiveError:
                if not probs:
                    raise
        return await self._decide(shape, text, payload, probs, pool, {}, how)

    async def _learned(self, shape: str, text: str, payload: dict[str, Any], vec: list[float],
                       pool: list[Manifest], scores: dict[str, float]) -> Choice | None:
        """The router with experts it was not trained on in ``pool``: ``scores`` (cosines to each
        expert's examples) let a newer one win by its nearest example."""
        assert self.router is not None
        names = [m.name for m in pool]
        if "full" in self.router.heads:
            probs, how = self.router.full(text, names, vec), "full"
        else:
            probs, how = self.router.first(text, names)[0], "fast"
        return await self._decide(shape, text, payload, probs, pool, scores, how)

    async def _decide(self, shape: str, text: str, payload: dict[str, Any], probs: dict[str, float],
                      pool: list[Manifest], scores: dict[str, float], how: str) -> Choice | None:
        assert self.router is not None
        if not probs:
            return None
        best = max(probs, key=lambda n: probs[n])
        shown = {k: round(v, 3) for k, v in sorted(probs.items(), key=lambda kv: -kv[1])[:5]}
        new = [m for m in pool if not self.router.knows(m.name)]
        if new and scores:
            nearest = max(new, key=lambda m: scores[m.name])
            if scores[nearest.name] >= scores.get(best, 0.0) + NEWER:
                why = (f"{nearest.name} is newer than the router (the next `make models` trains it in); its examples "
                       f"are the closest (cosine {scores[nearest.name]:.2f} against {scores.get(best, 0.0):.2f})")
                return (await self._refined(nearest, text, payload, why, shown)
                        or Choice(nearest, round(scores[nearest.name], 3), False, why, shown))
        m = next(e for e in pool if e.name == best)
        p = probs[best]
        general = self._general(families.general().name) if families.general() is not None else None
        if p < self.router.threshold and shape == "text" and general is not None:
            return Choice(general, round(p, 3), True,
                          f"the router is unsure (best {best} at p={p:.2f} < {self.router.threshold}, {how} head); "
                          f"using the general model {general.name}", shown)
        why = f"the router's {how} head picks {best} (p={p:.2f})"
        return await self._refined(m, text, payload, why, shown) or Choice(m, round(p, 3), False, why, shown)
