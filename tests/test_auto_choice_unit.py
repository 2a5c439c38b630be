"""The expert choice on fixed vectors (no processes): margins, fallback and evaluation tie-breaks.

The embedding function is replaced by a table of vectors so the cosine scores are known
exactly; everything else is the real ExpertIndex."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from colabhive.auto.experts import ExpertIndex
from colabhive.ensemble import Ensemble
from colabhive.manifests import Manifest

if TYPE_CHECKING:
    from colabhive.auto.router import LearnedRouter

VECS = {"ask": [1.0, 0.0, 0.0], "a": [0.99, 0.14, 0.0], "b": [0.99, 0.0, 0.14], "chat": [0.0, 0.0, 1.0]}


def _m(name: str, task: str, example: str, general: bool = False) -> Manifest:
    return Manifest(name=name, task=task, examples=[example], description="", options={"general": general} if general else {})


async def _embed(texts: list[str]) -> list[list[float]]:
    return [VECS.get(t, [0.0, 1.0, 0.0]) for t in texts]


def _choose(index: ExpertIndex, text: str = "ask") -> tuple[str, str]:
    c = asyncio.run(index.choose("text", text, {"text": text}))
    return c.manifest.name, c.why


def test_equally_close_experts_are_told_apart_by_their_evaluations() -> None:
    experts = [_m("a", "classification", "a"), _m("b", "classification", "b"), _m("chat", "generation", "chat", True)]
    quality = {"a@1.0.0": 0.81, "b@1.0.0": 0.93}
    assert _choose(ExpertIndex(experts, _embed, quality=quality.get))[0] == "b"
    quality = {"a@1.0.0": 0.95, "b@1.0.0": 0.93}
    assert _choose(ExpertIndex(experts, _embed, quality=quality.get))[0] == "a"
    # without evaluations the closer one (a and b tie here: the first) stands
    assert _choose(ExpertIndex(experts, _embed))[0] in ("a", "b")


def test_no_confident_expert_falls_back_to_the_general_model() -> None:
    experts = [_m("a", "classification", "a"), _m("chat", "generation", "chat", True)]
    name, why = _choose(ExpertIndex(experts, _embed), "something unrelated")
    assert name == "chat" and "general model" in why


FEATURES = ["radius", "texture", "perimeter", "area", "smoothness"]
RECORD = "radius=17.9, texture=10.4, perimeter=122.8, area=1001, smoothness=0.118"


def _tabular(name: str, ensemble: bool = False) -> Manifest:
    spec = Ensemble(members=["trees", "linear"], combine="mean") if ensemble else None
    return Manifest(name=name, task="tabular", examples=[name], ensemble=spec)


def _pick_record(quality: dict[str, float], text: str = RECORD) -> tuple[str, str]:
    experts = [_tabular("trees"), _tabular("both", ensemble=True), _tabular("linear")]
    index = ExpertIndex(experts, _embed, quality=quality.get, features_of=lambda m: FEATURES)
    c = asyncio.run(index.choose("record", text, {}))
    assert c.payload == {"record": {"radius": 17.9, "texture": 10.4, "perimeter": 122.8, "area": 1001.0,
                                    "smoothness": 0.118}}
    return c.manifest.name, c.why


def test_experts_on_the_same_features_are_chosen_by_evaluation() -> None:
    assert _pick_record({"trees@1.0.0": 0.944, "linear@1.0.0": 0.958, "both@1.0.0": 0.972})[0] == "both"
    assert _pick_record({"trees@1.0.0": 0.944, "linear@1.0.0": 0.958, "both@1.0.0": 0.95})[0] == "linear"
    # nothing evaluated yet: a single model (one call) before the ensemble, in catalog order
    name, why = _pick_record({})
    assert name == "trees" and "of the 3 experts on them" in why


def test_asking_for_combined_models_picks_the_ensemble() -> None:
    name, why = _pick_record({"trees@1.0.0": 0.99}, "combine several models on this row: " + RECORD)
    assert name == "both" and "several models combined" in why
    experts = [_m("a", "forecasting", "a"), _m("b", "forecasting", "b"),
               Manifest(name="ab", task="forecasting", examples=["chat"],
                        ensemble=Ensemble(members=["a", "b"], combine="mean"))]
    index = ExpertIndex(experts, _embed)
    c = asyncio.run(index.choose("series", "ask for an ensemble forecast", {"series": [1.0] * 8, "horizon": 2}))
    assert c.manifest.name == "ab" and "several models combined" in c.why
    c = asyncio.run(index.choose("series", "ask", {"series": [1.0] * 8, "horizon": 2}))
    assert c.manifest.name != "ab"  # not asked for: the closest forecaster


# the learned router (colabhive/auto/router.py) on the same fixed vectors: weights set by hand, so the
# probabilities are known; the real one is built by `make models` and checked in test_auto_router.py
def _router(threshold: float, names: tuple[str, ...] = ("a", "chat")) -> LearnedRouter:
    """A router with only its full head (on the part's vector), the weights set by hand."""
    import numpy as np

    from colabhive.auto.features import Featuriser
    from colabhive.auto.router import Head, LearnedRouter

    rows = {"a": [4.0, 0.0, 0.0], "chat": [0.0, 0.0, 4.0], "b": [0.0, 0.0, 0.0]}
    head = Head(Featuriser("minilm", "instruction", False), np.array([rows[n] for n in names]),
                np.zeros(len(names)))
    return LearnedRouter(list(names), {"full": head}, threshold, 1.01, "test")


def test_the_learned_router_picks_by_probability_and_says_so() -> None:
    experts = [_m("a", "classification", "a"), _m("chat", "generation", "chat", True)]
    c = asyncio.run(ExpertIndex(experts, _embed, router=_router(0.3)).choose("text", "ask", {"text": "ask"}))
    assert c.manifest.name == "a" and not c.fallback and "full head picks a" in c.why
    assert abs(sum(c.scores.values()) - 1.0) < 1e-6 and c.confidence > 0.9


def test_an_unsure_router_falls_back_to_the_general_model() -> None:
    experts = [_m("a", "classification", "a"), _m("chat", "generation", "chat", True)]
    index = ExpertIndex(experts, _embed, router=_router(0.6))
    c = asyncio.run(index.choose("text", "something unrelated", {"text": "x"}))  # [0, 1, 0]: 50/50
    assert c.manifest.name == "chat" and c.fallback and "unsure" in c.why and c.confidence < 0.6


def test_a_manifest_newer_than_the_router_is_routed_by_its_nearest_example() -> None:
    """`b` joined the catalog after the router was built: its example is the closest, so it wins
    until the next `make models` trains it in."""
    experts = [_m("a", "classification", "chat"), _m("b", "classification", "ask"),
               _m("chat", "generation", "chat", True)]
    c = asyncio.run(ExpertIndex(experts, _embed, router=_router(0.0)).choose("text", "ask", {"text": "ask"}))
    assert c.manifest.name == "b" and "newer than the router" in c.why


def test_several_models_combined_is_recognised_in_other_words_and_languages() -> None:
    from colabhive.auto.parse import wants_ensemble

    for text in ("use a committee of models for the next 3", "quero os próximos 3 meses com vários modelos combinados",
                 "prévois avec plusieurs modèles", "combinando dois modelos, preveja"):
        assert wants_ensemble(text), text
    for text in ("forecast the next 3 values", "which model is best?", "modelos de carro"):
        assert not wants_ensemble(text), text
