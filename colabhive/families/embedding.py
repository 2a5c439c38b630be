"""embedding: a sentence vector. /auto's router embeds requests and experts' examples with
it, and it backs ``/v1/embeddings``; vectors are not combined by ensembles."""

from __future__ import annotations

from typing import Any

from ..runners.embedding import EmbeddingRunner
from .base import TaskFamily

__all__ = ["Embedding"]


class Embedding(TaskFamily):
    name = "embedding"
    runner = EmbeddingRunner
    unsupported = frozenset({"ensemble"})
    auto_shape = "text"
    router_role = "embedder"
    metrics = frozenset({"knn_accuracy"})
    openai_route = "embeddings"

    def text_body(self, text: str) -> dict[str, Any]:
        return {"text": text}

    def vector_of(self, output: dict[str, Any]) -> list[float]:
        return list(output["embedding"])
