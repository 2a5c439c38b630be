"""What the router sees of a part: one function used by the recipe that trains it and the gateway
that serves it, so the two cannot drift apart.

A part becomes one sparse row: its sentence vector (MiniLM through the hive, or the distilled
static table in the gateway) over the text asked for (the whole part, or its instruction without
the payload), optionally followed by hashed word and character n-grams of the same text, which
carry the literal cues an embedding blurs ("vector", "em português", a question mark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .parse import instruction_of

__all__ = ["Featuriser"]

WORD_FEATURES = 1 << 13
CHAR_FEATURES = 1 << 14


@dataclass(slots=True)
class Featuriser:
    embedding: str
    """"minilm" (the catalog's embedding function, a node call) or "static" (distilled, in the gateway)."""
    text: str
    """"full", "instruction", or "mixed" (the embedding reads the whole part, the n-grams only its
    instruction: what the payload is about must not pull the part to another task)."""
    ngrams: bool

    @property
    def needs_node(self) -> bool:
        return self.embedding == "minilm"

    @property
    def name(self) -> str:
        return f"{self.embedding}:{self.text}{'+ngrams' if self.ngrams else ''}"

    def text_of(self, part: str) -> str:
        """What the sentence embedding reads."""
        return instruction_of(part) if self.text == "instruction" else part

    def ngram_text_of(self, part: str) -> str:
        return instruction_of(part) if self.text in ("instruction", "mixed") else part

    def blocks(self, texts: list[str], vectors: np.ndarray) -> list[Any]:
        """:meth:`matrix`'s column blocks, unjoined: the gateway multiplies each by its own slice of
        the weights, which is cheaper than stacking them for one row."""
        if not self.ngrams:
            return [np.asarray(vectors, dtype=np.float32)]
        import sklearn

        words, chars = _vectorisers()
        grams = [self.ngram_text_of(t) for t in texts]
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):  # a third of the cost
            return [np.asarray(vectors, dtype=np.float32), words.transform(grams), chars.transform(grams)]

    def matrix(self, texts: list[str], vectors: np.ndarray) -> Any:
        """Rows for ``texts`` (the parts as written) given their sentence vectors (of :meth:`text_of`)."""
        from scipy import sparse

        dense = sparse.csr_matrix(np.asarray(vectors, dtype=np.float64))
        if not self.ngrams:
            return dense
        words, chars = _vectorisers()
        grams = [self.ngram_text_of(t) for t in texts]
        return sparse.hstack([dense, words.transform(grams), chars.transform(grams)], format="csr")


_VECTORISERS: tuple[Any, Any] | None = None


def _vectorisers() -> tuple[Any, Any]:
    """Stateless (hashing), so the recipe and the gateway need share nothing but these settings."""
    global _VECTORISERS
    if _VECTORISERS is None:
        from sklearn.feature_extraction.text import HashingVectorizer

        _VECTORISERS = (
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=WORD_FEATURES, alternate_sign=False,
                              norm="l2", lowercase=True),
            HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=CHAR_FEATURES,
                              alternate_sign=False, norm="l2", lowercase=True),
        )
    return _VECTORISERS
