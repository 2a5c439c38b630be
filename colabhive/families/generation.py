"""generation: chat completion. Its general model is /auto's fallback when no expert is
confident, and it backs ``/v1/chat/completions``. Free text is not averaged, so no ensembles."""

from __future__ import annotations

from typing import Any

from ..auto.parse import Part
from ..runners.generation import GenerationRunner
from .base import TaskFamily

__all__ = ["GEN_MAX_TOKENS", "Generation"]

GEN_MAX_TOKENS = 96
"""An /auto part's answer length: one part of several, so a short one."""


class Generation(TaskFamily):
    name = "generation"
    runner = GenerationRunner
    unsupported = frozenset({"ensemble"})
    auto_shape = "text"
    auto_general = True
    metrics = frozenset({"contains", "chrf", "accuracy"})
    openai_route = "chat"

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        """The whole part as the user's message: a general model needs the question, not just its payload."""
        return {"messages": [{"role": "user", "content": part.text}], "max_tokens": GEN_MAX_TOKENS}
