"""embedding: sentence embeddings from a BERT-style encoder (MiniLM and kin).

Attention-masked mean pooling then L2 normalisation: what sentence-transformers does for
these models, so vectors match published ones (cosine > 0.999). The encoding step lives in
:class:`MeanPooledEncoder` so other runners (rerank, classification) and the recipes that
train heads on these vectors use exactly the same vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from ..manifests import Manifest, Source
from ..plugins import get_plugin_manager, place_model
from ..wire import Device
from .base import Runner, source_path, text_input

__all__ = ["EmbeddingOutput", "EmbeddingRunner", "MeanPooledEncoder", "encoder_path"]


def encoder_path(manifest: Manifest) -> Path:
    """Where the encoder's weights are: ``options.encoder_package``, else the manifest's source.

    A classifier's ``source`` is its head (a small trained directory), while the encoder
    under it is the same installed MiniLM package the embedding function serves; naming
    that package in options keeps one copy of the weights and one definition of the vectors.
    """
    package = manifest.options.get("encoder_package")
    if package:
        return source_path(msgspec.structs.replace(manifest, source=Source(package=str(package))))
    return source_path(manifest)


class MeanPooledEncoder:
    """Tokenise → forward → masked mean-pool → L2-normalise, for one manifest on one device.

    Shared by every runner built on sentence vectors, so they cannot drift apart.
    """

    DEFAULT_MAX_TOKENS = 256
    """The cut when a manifest's options name none (the embedding function's)."""

    def __init__(self, manifest: Manifest, device: Device, dtype: str) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = encoder_path(manifest)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        self.model = place_model(model, device, dtype)
        self.torch_device = get_plugin_manager().hook.hive_torch_device(device=device)
        self.max_tokens = int(manifest.options.get("max_tokens", self.DEFAULT_MAX_TOKENS))

    def encode(self, texts: list[str]) -> Any:
        """Unit-length fp32 vectors, one row per text, on the model's device (one forward pass)."""
        torch = self.torch
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.torch_device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            self.last_token_counts: list[int] = batch["attention_mask"].sum(1).tolist()
            """Tokens each text became (after truncation): what usage is billed on."""
            return torch.nn.functional.normalize(pooled.float(), p=2, dim=1)


class EmbeddingOutput(msgspec.Struct):
    embedding: list[float]
    tokens: int
    """Tokens the text became, special tokens included (OpenAI usage counts these)."""


class EmbeddingRunner(Runner):
    Output = EmbeddingOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return text_input("EmbeddingInput", max_text_chars)

    def load(self) -> None:
        self.encoder = MeanPooledEncoder(self.manifest, self.device, self.dtype)

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        vecs = self.encoder.encode([i.text for i in inputs]).cpu()
        counts = self.encoder.last_token_counts
        return [EmbeddingOutput(embedding=row, tokens=n) for row, n in zip(vecs.tolist(), counts)]
