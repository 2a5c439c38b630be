"""experts: a group of LoRA experts on one base, routed per call by the topic of the question.

An expert group (a manifest with ``[experts]``) is the base generation model of ``source``
plus one adapter per member, each trained on one partition of the data. A call's last user
message is embedded with the group's sentence encoder (``experts.embed``, the centroids'
space); the members whose centroids are closest by cosine answer: the top ``k``, weighted by
softmax(cosine / temperature). k=1 is that member's adapter alone; k>1 mixes the members'
next-token distributions token by token (c-BTM), each member one physical row of the batch.

Everything else is the generation runner's: the same input (plus ``expert`` to pin a member
by name and ``k`` to override the manifest's), the same continuous batch, where calls routed
to different members still share one forward pass per step (peft's mixed-batch adapters), and
adapters loaded on demand into a byte-budgeted LRU (:mod:`.adapters`). The output is the
generation output plus who answered (``experts``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..errors import InvalidInput
from .base import Finished
from .generation import GenerationOutput, GenerationRunner, TextStream, Usage, _generator, input_fields

if TYPE_CHECKING:
    from .adapters import AdapterCache
    from .generation_batch import Ticket

__all__ = ["ExpertUsed", "ExpertsOutput", "ExpertsRunner"]


class ExpertUsed(msgspec.Struct):
    """One member that answered a call, and why it was chosen."""

    name: str
    taxon: str
    weight: float
    """Its share of the mixture (1.0 when it answered alone)."""
    cosine: float
    """Cosine of the call's last user message to the member's centroid."""


class ExpertsOutput(msgspec.Struct):
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage
    experts: list[ExpertUsed]
    """The members that answered, heaviest first."""


@lru_cache(maxsize=8)
def _input_type(max_text_chars: int) -> type[msgspec.Struct]:
    """A generation input plus the two routing knobs."""
    return msgspec.defstruct(
        "ExpertsInput",
        [
            *input_fields(max_text_chars),
            ("expert", Annotated[str, Meta(min_length=1, max_length=64,
                                           description="Answer with this member alone (its name).")] | None, None),
            ("k", Annotated[int, Meta(ge=1, le=8, description="Members that answer (default: the group's k).")]
             | None, None),
        ],
        forbid_unknown_fields=True,
        kw_only=True,
    )


class ExpertsRunner(GenerationRunner):
    Output = ExpertsOutput
    adapters: AdapterCache

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return _input_type(max_text_chars)

    def load(self) -> None:
        from .embedding import MeanPooledEncoder

        experts = self.manifest.experts
        if experts is None:
            raise ValueError(f"{self.manifest.ref}: task 'experts' needs an [experts] table")
        super().load()
        torch = self.torch
        embed = msgspec.structs.replace(self.manifest, source=experts.embed, options={})
        self.encoder = MeanPooledEncoder(embed, self.device, self.dtype)
        self.members = {m.name: m for m in experts.members}
        centroids = torch.tensor([m.centroid for m in experts.members], dtype=torch.float32)
        self.centroids = torch.nn.functional.normalize(centroids, dim=1)
        dim = int(self.encoder.encode(["a"]).shape[1])
        if self.centroids.shape[1] != dim:
            raise ValueError(f"{self.manifest.ref}: the members' centroids have {self.centroids.shape[1]} "
                             f"dimensions; the embed model's vectors have {dim}")

    def _prepare(self, model: Any) -> Any:
        """The base wrapped once as a PeftModel: members' adapters are loaded into it on demand."""
        from .adapters import wrap_base

        return wrap_base(model)

    def _adapter_cache(self) -> AdapterCache:
        from .adapters import AdapterCache

        experts = self.manifest.experts
        assert experts is not None
        paths = {m.name: self.manifest.resolve(m.adapter) for m in experts.members}
        self.adapters = AdapterCache(self.model, experts.adapter_memory_mb << 20, paths)
        return self.adapters

    def adapters_held(self) -> list[dict[str, Any]]:
        """The members' adapters this runner holds now (``{name, bytes, last_used}``), for the node's heartbeat."""
        return self.adapters.held()

    def check(self, inp: Any) -> None:
        """Generation's checks, and a pinned member or ``k`` that this group can honour."""
        super().check(inp)
        if inp.expert is not None and inp.expert not in self.members:
            raise InvalidInput(f"no member {inp.expert!r} in this group; members: {', '.join(self.members)}",
                               field="expert")
        if inp.k is not None and inp.k > len(self.members):
            raise InvalidInput(f"k is {inp.k}, but the group has {len(self.members)} members", field="k")

    def route(self, inp: Any) -> list[ExpertUsed]:
        """The members that answer ``inp``, heaviest first: the pinned one, else the top k by cosine."""
        torch = self.torch
        experts = self.manifest.experts
        assert experts is not None
        text = next(m.content for m in reversed(inp.messages) if m.role == "user")
        cosines = (self.centroids @ self.encoder.encode([text])[0].float().cpu()).tolist()
        names = list(self.members)
        if inp.expert is not None:
            if inp.expert not in self.members:
                raise InvalidInput(f"no member {inp.expert!r} in this group; members: {', '.join(names)}",
                                   field="expert")
            i = names.index(inp.expert)
            return [ExpertUsed(name=inp.expert, taxon=self.members[inp.expert].taxon, weight=1.0,
                               cosine=cosines[i])]
        k = min(inp.k or experts.k, len(names))
        top = sorted(range(len(names)), key=lambda i: -cosines[i])[:k]
        weights = torch.softmax(torch.tensor([cosines[i] for i in top]) / experts.temperature, dim=0).tolist()
        return [ExpertUsed(name=names[i], taxon=self.members[names[i]].taxon, weight=w, cosine=cosines[i])
                for i, w in zip(top, weights, strict=True)]

    def submit(self, inp: Any, emit: Callable[[str], None],
               done: Callable[[Finished], None] | None = None) -> Ticket:
        """Route, then hand the call to the batch as a mixture of the chosen members' adapters."""
        used = self.route(inp)
        generator = _generator(self.torch, inp) if inp.temperature > 0 else None
        text = TextStream(self._decode, inp.stop, emit)

        def dress(out: GenerationOutput) -> ExpertsOutput:
            return ExpertsOutput(text=out.text, finish_reason=out.finish_reason, usage=out.usage, experts=used)

        return self.engine.submit(self._prompt_ids(inp), inp, text, generator, done,
                                  mixture=[(u.name, u.weight) for u in used], dress=dress)
