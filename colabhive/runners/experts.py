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
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .base import Finished
from .expert_routing import CentroidRouter, ExpertUsed, group_of, routing_fields
from .generation import GenerationOutput, GenerationRunner, TextStream, Usage, _generator, input_fields

if TYPE_CHECKING:
    from .adapters import AdapterCache
    from .generation_batch import Ticket

__all__ = ["ExpertUsed", "ExpertsOutput", "ExpertsRunner"]


class ExpertsOutput(msgspec.Struct):
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage
    experts: list[ExpertUsed]
    """The members that answered, heaviest first."""


@lru_cache(maxsize=8)
def _input_type(max_text_chars: int) -> type[msgspec.Struct]:
    """A generation input plus the two routing knobs."""
    return msgspec.defstruct("ExpertsInput", [*input_fields(max_text_chars), *routing_fields()],
                             forbid_unknown_fields=True, kw_only=True)


class ExpertsRunner(GenerationRunner):
    Output = ExpertsOutput
    adapters: AdapterCache

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return _input_type(max_text_chars)

    def load(self) -> None:
        from .embedding import MeanPooledEncoder

        experts, embed = group_of(self.manifest)
        super().load()
        self.encoder = MeanPooledEncoder(embed, self.device, self.dtype)
        self.router = CentroidRouter(self.torch, experts, int(self.encoder.encode(["a"]).shape[1]),
                                     self.manifest.ref)

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
        self.router.check(inp)

    def route(self, inp: Any) -> list[ExpertUsed]:
        """The members that answer ``inp`` (by its last user message), heaviest first."""
        text = next(m.content for m in reversed(inp.messages) if m.role == "user")
        return self.router.pick(inp, self.router.cosines(self.encoder.encode([text]))[0])

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
