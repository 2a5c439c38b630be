"""rerank: order passages by relevance to a query, with MiniLM as a bi-encoder.

No cross-encoder ships offline, so relevance is the cosine between the query's and each
passage's sentence vectors, from the same :class:`MeanPooledEncoder` as ``embedding``.
A batch's queries and passages are encoded together, in as few forward passes as
``options.texts_per_pass`` allows, so batching pays off as it does for embeddings.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .base import Runner
from .embedding import MeanPooledEncoder

__all__ = ["MAX_PASSAGES", "RerankOutput", "RerankResult", "RerankRunner"]

MAX_PASSAGES = 64


class RerankResult(msgspec.Struct):
    index: int
    score: float


class RerankOutput(msgspec.Struct):
    results: list[RerankResult]
    """Every passage once, by cosine similarity to the query, best first."""


class RerankRunner(Runner):
    Output = RerankOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        text = Annotated[str, Meta(min_length=1, max_length=max_text_chars)]
        return msgspec.defstruct(
            "RerankInput",
            [("query", text), ("passages", Annotated[list[text], Meta(min_length=1, max_length=MAX_PASSAGES)])],
            forbid_unknown_fields=True,
        )

    def load(self) -> None:
        self.encoder = MeanPooledEncoder(self.manifest, self.device, self.dtype)
        self.texts_per_pass = int(self.manifest.options.get("texts_per_pass", 256))

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        torch = self.encoder.torch
        texts: list[str] = []
        for i in inputs:  # query first, then its passages
            texts.append(i.query)
            texts.extend(i.passages)
        step = self.texts_per_pass
        vecs = torch.cat([self.encoder.encode(texts[k : k + step]) for k in range(0, len(texts), step)])
        out: list[msgspec.Struct] = []
        start = 0
        for i in inputs:
            n = len(i.passages)
            scores = (vecs[start + 1 : start + 1 + n] @ vecs[start]).clamp(-1.0, 1.0).cpu().tolist()
            start += 1 + n
            order = sorted(range(n), key=lambda j: scores[j], reverse=True)
            out.append(RerankOutput(results=[RerankResult(index=j, score=scores[j]) for j in order]))
        return out
