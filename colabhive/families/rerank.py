"""rerank: passages ordered by relevance to a query. /auto sends it a question with numbered
passages (and nothing else: it needs passages); a ranking is not combined by ensembles."""

from __future__ import annotations

from typing import Any

from ..auto.parse import Part, passages_of
from ..runners.rerank import RerankRunner
from .base import TaskFamily

__all__ = ["Rerank"]


class Rerank(TaskFamily):
    name = "rerank"
    runner = RerankRunner
    unsupported = frozenset({"ensemble", "openai"})
    auto_shape = "ranking"
    metrics = frozenset({"top1", "accuracy"})

    def recognise(self, text: str) -> dict[str, Any] | None:
        ranked = passages_of(text)
        return None if ranked is None else {"query": ranked[0], "passages": ranked[1]}

    def from_object(self, obj: dict[str, Any]) -> Part | None:
        """``{"query", "passages"}``; the query is the part's text, what the router embeds."""
        if "passages" not in obj:
            return None
        return Part(obj.get("query", ""), "ranking", {"query": obj.get("query", ""), "passages": obj["passages"]})

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        return {"query": part.payload["query"], "passages": part.payload["passages"]}
