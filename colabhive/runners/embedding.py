"""embedding: sentence embeddings from a BERT-style encoder (MiniLM and kin).

Attention-masked mean pooling then L2 normalisation: what sentence-transformers does for
these models, so vectors match published ones (cosine > 0.999).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..plugins import get_plugin_manager, place_model
from .base import Runner, source_path, text_input

__all__ = ["EmbeddingOutput", "EmbeddingRunner"]


class EmbeddingOutput(msgspec.Struct):
    embedding: list[float]


class EmbeddingRunner(Runner):
    task = "embedding"
    Output = EmbeddingOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return text_input("EmbeddingInput", max_text_chars)

    def load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = source_path(self.manifest)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        self.model = place_model(model, self.device, self.dtype)
        self.torch_device = get_plugin_manager().hook.hive_torch_device(device=self.device)
        self.max_tokens = int(self.manifest.options.get("max_tokens", 256))

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        torch = self._torch
        batch = self.tokenizer(
            [i.text for i in inputs],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.torch_device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vecs = torch.nn.functional.normalize(pooled.float(), p=2, dim=1).cpu()
        return [EmbeddingOutput(embedding=row) for row in vecs.tolist()]
