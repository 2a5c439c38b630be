"""language: which language a text is in. The router asks it for a translation's source
language; ensembles combine its answers like labels."""

from __future__ import annotations

from typing import Any

from ..ensemble import Rule
from ..runners.language import LanguageRunner
from .base import TaskFamily
from .combining import combine_labels

__all__ = ["Language"]


class Language(TaskFamily):
    name = "language"
    runner = LanguageRunner
    unsupported = frozenset({"openai"})
    combine_rules = frozenset({"vote", "mean", "score_weighted"})
    auto_shape = "text"
    router_role = "language_id"
    metrics = frozenset({"accuracy"})

    def combine(self, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
        return combine_labels("language", rule, outputs, weights)

    def text_body(self, text: str) -> dict[str, Any]:
        return {"text": text}

    def language_of(self, output: dict[str, Any]) -> str | None:
        lang = output.get("language")
        return lang if isinstance(lang, str) else None
