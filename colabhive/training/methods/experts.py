"""experts: partition a dataset and train one expert per partition, served as one group on one base.

An expert is a LoRA adapter on a generation base (``expert_method = "lora"``: the group is a
function of task ``experts``, answering chat) or a linear head over a frozen encoder
(``"head"``: task ``classifier-experts``, answering a label). Either way every member shares
the base, so a node loads it once and a call pays only for its members' small weights.

Unlike the other methods this one never runs on a node: the gateway partitions the data
(``colabhive.training.partition``), submits one ordinary child job of ``expert_method`` per
partition (each leased, checkpointed and resumed like any job, on whichever node is free) and,
when every child has landed, registers the group as one function of task ``experts``
(``colabhive.gateway.experts_jobs``). So ``Trainer`` is absent and ``gateway_only`` is set:
a node that leased such a spec would have nothing to run.

Budget: ``budget.max_steps`` is the group's total, shared by the experts in proportion to
their partitions' sizes (``steps = "proportional"``, c-BTM's equal-compute comparison) or
equally; ``budget.max_minutes`` bounds each child, since children train side by side.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from ..errors import InvalidSpec
from ..partition import PartitionSpec
from .base import Method

__all__ = ["ExpertsHParams", "ExpertsMethod", "GROUP_TASK", "METHOD", "Route"]


class Route(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the group answers a call; written into the group's manifest ``[experts]``."""

    k: Annotated[int, Meta(ge=1, le=8)] = 1
    temperature: Annotated[float, Meta(gt=0, le=10)] = 0.1


class ExpertsHParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    partition: PartitionSpec
    expert_method: Literal["lora", "head"] = "lora"
    """What each expert is: a LoRA adapter on a generation ``base``, or a classification head on an
    encoder ``base``; either way the group serves on one base."""
    expert_hparams: dict[str, Any] = {}
    """Decoded by the expert method's own HParams (``r``, ``lr``, ``batch_size`` ...)."""
    steps: Literal["proportional", "equal"] = "proportional"
    route: Route = msgspec.field(default_factory=Route)
    adapter_memory_mb: Annotated[int, Meta(ge=1, le=1 << 20)] = 256
    max_rows: Annotated[int, Meta(ge=2, le=50_000)] = 20_000
    """The most rows partitioned (every prompt is embedded once through the hive)."""
    min_steps: Annotated[int, Meta(ge=1)] = 1
    """No expert trains fewer steps than this, however small its partition."""


GROUP_TASK = {"lora": "experts", "head": "classifier-experts"}
"""The group's task for each kind of expert."""


class ExpertsMethod(Method):
    name = "experts"
    task = "experts"
    HParams = ExpertsHParams
    roles = ("prompt", "response", "text", "label")
    """The union; a spec may use only its expert method's (checked in :meth:`check_spec`)."""
    needs_base = True
    base_tasks = frozenset({"generation", "embedding"})
    metrics = frozenset({"contains", "chrf", "accuracy"})
    gateway_only: ClassVar[bool] = True

    @classmethod
    def eval_field(cls, metric: str, trainer: Any = None) -> str:
        return "label" if metric == "accuracy" else "text"

    @classmethod
    def check_spec(cls, spec: Any, hparams: Any) -> None:
        from . import get_method
        from .. import spec as spec_mod

        super().check_spec(spec, hparams)
        expert = get_method(hparams.expert_method)
        for role in spec.dataset.columns:
            if role not in expert.roles:
                raise InvalidSpec(f"{expert.name} experts have no column role {role!r}; their roles are "
                                  f"{', '.join(expert.roles)}", field=f"dataset.columns.{role}")
        if spec.eval.metric not in expert.metrics:
            raise InvalidSpec(f"metric {spec.eval.metric!r} does not apply to {expert.name} experts; use "
                              f"{', '.join(sorted(expert.metrics))}", field="eval.metric")
        if hparams.partition.strategy == "difficulty" and hparams.expert_method != "lora":
            raise InvalidSpec("the difficulty strategy ranks rows by the base's loss on each reply, which only a "
                              "generation base has: use column or cluster for head experts",
                              field="hparams.partition.strategy")
        try:
            msgspec.convert(hparams.expert_hparams, type=expert.HParams)
        except msgspec.ValidationError as exc:
            field, msg = spec_mod._field(exc, "hparams.expert_hparams")
            raise InvalidSpec(msg, field=field) from None
        if spec.budget.max_steps is None:
            raise InvalidSpec("an experts job shares `budget.max_steps` among its experts: give it", field="budget.max_steps")


METHOD = ExpertsMethod
