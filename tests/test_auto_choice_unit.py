"""The expert choice on fixed vectors (no processes): margins, fallback and evaluation tie-breaks.

The embedding function is replaced by a table of vectors so the cosine scores are known
exactly; everything else is the real ExpertIndex."""

from __future__ import annotations

import asyncio

from colabhive.auto.experts import ExpertIndex
from colabhive.manifests import Manifest

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
