"""experts: chat completion answered by a group of LoRA experts on one base, routed per call
by topic (:mod:`colabhive.runners.experts`). To /auto it is a text expert like any other, and
its answers are scored like generation's. Free text is not averaged across functions (the
group mixes its members itself, token by token), so no ensembles; the OpenAI chat route stays
with the general model, whose input has no routing knobs."""

from __future__ import annotations

from typing import Any

from ..auto.parse import Part
from ..runners.experts import ExpertsRunner
from .base import TaskFamily
from .generation import GEN_MAX_TOKENS

__all__ = ["ExpertGroup"]


class ExpertGroup(TaskFamily):
    name = "experts"
    runner = ExpertsRunner
    unsupported = frozenset({"ensemble", "openai"})
    auto_shape = "text"
    metrics = frozenset({"contains", "chrf"})

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        """The whole part as the user's message, as for generation: the group routes it itself."""
        return {"messages": [{"role": "user", "content": part.text}], "max_tokens": GEN_MAX_TOKENS}
