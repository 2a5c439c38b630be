"""Centroid routing for expert groups: which members answer a call, and with what weight.

Shared by both kinds of group (LoRA experts answering chat, head experts answering a label) so
they route identically: cosine of the call's unit vector to each member's unit centroid, the
top ``k`` (or the one member a caller pinned), weighted by softmax(cosine / temperature), as
c-BTM weights its experts by distance to their cluster centres.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..errors import InvalidInput
from ..manifests import Experts, Manifest

__all__ = ["CentroidRouter", "ExpertUsed", "group_of", "routing_fields"]


class ExpertUsed(msgspec.Struct):
    """One member that answered a call, and why it was chosen."""

    name: str
    taxon: str
    weight: float
    """Its share of the mixture (1.0 when it answered alone)."""
    cosine: float
    """Cosine of the call's text to the member's centroid."""


def routing_fields() -> list[tuple[str, Any, Any]]:
    """The two knobs a group's input adds to its family's: pin a member, or override k."""
    return [
        ("expert", Annotated[str, Meta(min_length=1, max_length=64,
                                       description="Answer with this member alone (its name).")] | None, None),
        ("k", Annotated[int, Meta(ge=1, le=8, description="Members that answer (default: the group's k).")]
         | None, None),
    ]


def group_of(manifest: Manifest) -> tuple[Experts, Manifest]:
    """A group's ``[experts]`` table, and its routing encoder as a manifest a :class:`MeanPooledEncoder` loads."""
    if manifest.experts is None:
        raise ValueError(f"{manifest.ref}: task {manifest.task!r} needs an [experts] table")
    return manifest.experts, msgspec.structs.replace(manifest, source=manifest.experts.embed, options={})


class CentroidRouter:
    def __init__(self, torch: Any, experts: Experts, dim: int, ref: str) -> None:
        self.torch = torch
        self.experts = experts
        self.members = {m.name: m for m in experts.members}
        self.names = list(self.members)
        centroids = torch.tensor([m.centroid for m in experts.members], dtype=torch.float32)
        self.centroids = torch.nn.functional.normalize(centroids, dim=1)
        if self.centroids.shape[1] != dim:
            raise ValueError(f"{ref}: the members' centroids have {self.centroids.shape[1]} dimensions; "
                             f"the embed model's vectors have {dim}")

    def check(self, inp: Any) -> None:
        """A pinned member or ``k`` that this group can honour, else a 4xx naming the field."""
        if inp.expert is not None and inp.expert not in self.members:
            raise InvalidInput(f"no member {inp.expert!r} in this group; members: {', '.join(self.names)}",
                               field="expert")
        if inp.k is not None and inp.k > len(self.members):
            raise InvalidInput(f"k is {inp.k}, but the group has {len(self.members)} members", field="k")

    def cosines(self, vecs: Any) -> list[list[float]]:
        """Per row of unit vectors ``vecs``, its cosine to every member's centroid."""
        return (vecs.float().cpu() @ self.centroids.T).tolist()

    def pick(self, inp: Any, cosines: list[float]) -> list[ExpertUsed]:
        """The members that answer ``inp``, heaviest first: the pinned one, else the top k by cosine."""
        self.check(inp)
        if inp.expert is not None:
            return [ExpertUsed(name=inp.expert, taxon=self.members[inp.expert].taxon, weight=1.0,
                               cosine=cosines[self.names.index(inp.expert)])]
        k = min(inp.k or self.experts.k, len(self.names))
        top = sorted(range(len(self.names)), key=lambda i: -cosines[i])[:k]
        weights = self.torch.softmax(self.torch.tensor([cosines[i] for i in top]) / self.experts.temperature,
                                     dim=0).tolist()
        return [ExpertUsed(name=self.names[i], taxon=self.members[self.names[i]].taxon, weight=w, cosine=cosines[i])
                for i, w in zip(top, weights, strict=True)]
