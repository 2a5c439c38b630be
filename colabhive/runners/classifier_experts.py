"""classifier-experts: a group of classification heads on one frozen encoder, routed per call.

The ``head`` counterpart of :mod:`.experts`. Every member is a linear head (``head.safetensors``
+ ``labels.json``, as the ``head`` method exports it) trained on one partition of the data, all
over the one encoder named by ``options.encoder_package``. A call is encoded once; its vector is
routed against the members' centroids (:class:`CentroidRouter`: the top ``k`` by cosine, or a
pinned member) and the chosen heads' label distributions are mixed, weighted by
softmax(cosine / temperature), as c-BTM mixes its experts' next-token distributions. Members
may know different labels (a partition may lack one): the mixture is over the union, a label a
member never saw getting probability 0 from it.

Heads are a few kilobytes each, so all are loaded at start; there is no LRU to size. The
centroids were computed by the hive's embedding function (``experts.embed``, cut at its own
``max_tokens``) while the heads read the encoder cut at the training's ``max_tokens``: when both
are the same package and no text in the batch was cut, the two vectors are the same and one
forward pass serves both; otherwise the batch is encoded again for routing, on the same weights.
"""

from __future__ import annotations

import copy
import json
import time
from functools import lru_cache
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .base import Runner
from .classification import HEAD_FILE, LABELS_FILE, TOP_K, LabelScore
from .embedding import MeanPooledEncoder, encoder_path
from .expert_routing import CentroidRouter, ExpertUsed, group_of, routing_fields

__all__ = ["ClassifierExpertsOutput", "ClassifierExpertsRunner"]


class ClassifierExpertsOutput(msgspec.Struct):
    label: str
    score: float
    top: list[LabelScore]
    experts: list[ExpertUsed]
    """The members that answered, heaviest first."""


@lru_cache(maxsize=8)
def _input_type(max_text_chars: int) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        "ClassifierExpertsInput",
        [("text", Annotated[str, Meta(min_length=1, max_length=max_text_chars)]), *routing_fields()],
        forbid_unknown_fields=True, kw_only=True,
    )


class ClassifierExpertsRunner(Runner):
    Output = ClassifierExpertsOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return _input_type(max_text_chars)

    def load(self) -> None:
        from safetensors.torch import load_file

        experts, embed = group_of(self.manifest)
        self.encoder = MeanPooledEncoder(self.manifest, self.device, self.dtype)
        torch = self.torch = self.encoder.torch
        if encoder_path(embed) == encoder_path(self.manifest):
            self.router_encoder = copy.copy(self.encoder)  # the same weights, the embedding function's cut
            self.router_encoder.max_tokens = MeanPooledEncoder.DEFAULT_MAX_TOKENS
        else:
            self.router_encoder = MeanPooledEncoder(embed, self.device, self.dtype)
        dim = self.encoder.model.config.hidden_size
        self.router = CentroidRouter(torch, experts, int(self.router_encoder.model.config.hidden_size),
                                     self.manifest.ref)
        self.labels: list[str] = []
        self.heads: dict[str, tuple[Any, Any, list[int]]] = {}
        """member → (weight, bias, index of each of its labels in ``self.labels``)."""
        self.bytes: dict[str, int] = {}
        device = self.encoder.torch_device
        for m in experts.members:
            folder = self.manifest.resolve(m.adapter)
            labels = json.loads((folder / LABELS_FILE).read_text())
            tensors = load_file(str(folder / HEAD_FILE))
            weight, bias = tensors["weight"], tensors["bias"]
            if weight.ndim != 2 or weight.shape != (len(labels), dim) or tuple(bias.shape) != (len(labels),):
                raise ValueError(f"{folder}: head weight {tuple(weight.shape)} / bias {tuple(bias.shape)} do not fit "
                                 f"{len(labels)} labels over {dim}-dim vectors")
            for x in labels:
                if x not in self.labels:
                    self.labels.append(x)
            index = [self.labels.index(x) for x in labels]
            self.heads[m.name] = (weight.float().to(device), bias.float().to(device), index)
            self.bytes[m.name] = int(weight.numel() + bias.numel()) * 4
        self.loaded_at = time.time()

    def adapters_held(self) -> list[dict[str, Any]]:
        """Every member's head (all are held from the start), for the node's heartbeat."""
        return [{"name": n, "bytes": b, "last_used": self.loaded_at} for n, b in self.bytes.items()]

    def check(self, inp: Any) -> None:
        self.router.check(inp)

    def _mixture(self, vec: Any, used: list[ExpertUsed]) -> Any:
        torch = self.torch
        probs = torch.zeros(len(self.labels), device=vec.device)
        for u in used:
            weight, bias, index = self.heads[u.name]
            p = torch.softmax(vec @ weight.T + bias, dim=0)
            probs[torch.tensor(index, device=vec.device)] += u.weight * p
        return probs

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        torch = self.torch
        texts = [i.text for i in inputs]
        vecs = self.encoder.encode(texts)
        cut = max(self.encoder.last_token_counts) >= self.encoder.max_tokens
        r = self.router_encoder
        shared = r.model is self.encoder.model and r.max_tokens >= self.encoder.max_tokens
        route = vecs if shared and not cut else self.router_encoder.encode(texts)
        out: list[msgspec.Struct] = []
        with torch.inference_mode():
            for inp, vec, cos in zip(inputs, vecs, self.router.cosines(route), strict=True):
                used = self.router.pick(inp, cos)
                scores, idx = self._mixture(vec, used).topk(min(TOP_K, len(self.labels)))
                top = [LabelScore(label=self.labels[j], score=s) for j, s in zip(idx.tolist(), scores.tolist())]
                out.append(ClassifierExpertsOutput(label=top[0].label, score=top[0].score, top=top, experts=used))
        return out
