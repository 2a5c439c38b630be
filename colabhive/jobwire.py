"""Wire Structs of training jobs between gateway and node (the serving ones are in wire.py).

A node asks for work with :class:`LeaseRequest` on ``POST /v1/nodes/{id}/jobs/lease`` (a long
poll, like the task poll), and gets at most one :class:`JobLease`. While it trains it posts
:class:`JobEvents` to ``/v1/nodes/{id}/jobs/{job}/events``: each post renews the lease and its
reply says whether the job was cancelled. Checkpoints (a tar of one checkpoint directory) go
to ``PUT .../checkpoint?step=N`` and come back from ``GET .../checkpoint`` on whichever node
resumes the job; the export (a tar of the new version's directory) goes to ``PUT .../result``,
then :class:`JobFinish` to ``POST .../finish`` ends the lease.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = ["JobEvents", "JobEventsReply", "JobFinish", "JobLease", "LeaseReply", "LeaseRequest"]

JobId = Annotated[str, Meta(min_length=1, max_length=64)]


class LeaseRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    wait_ms: Annotated[int, Meta(ge=0, le=120_000)] = 20_000
    running: Annotated[list[JobId], Meta(max_length=64)] = []
    """Jobs this node is training now (a gateway that restarted learns they are alive)."""


class JobLease(msgspec.Struct, kw_only=True):
    job_id: str
    spec: msgspec.Raw
    """The job spec as submitted (``colabhive.training.spec.JobSpec``)."""
    attempt: int
    """1 for the first node; more when the job resumes after a lost lease."""
    lease_s: float
    """Post events at least this often, or the job goes back to the queue."""
    device: str
    """The device id the gateway placed the job on (memory counted against it)."""
    resume_step: int | None = None
    """A checkpoint at this step exists: fetch it and continue from there."""
    dataset_format: str = ""
    eval_dataset_format: str = ""


class LeaseReply(msgspec.Struct, kw_only=True):
    job: JobLease | None = None


class JobEvents(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[list[dict[str, Any]], Meta(max_length=10_000)] = []
    """Step metrics, in order (step, loss, lr, grad_norm, items, tokens, samples_seen, ...)."""
    logs: Annotated[list[Annotated[str, Meta(max_length=4096)]], Meta(max_length=1000)] = []
    energy_j: Annotated[float, Meta(ge=0)] | None = None
    """Device energy the job used since its lease began, as the plugin reads it."""
    energy_estimated: bool = False


class JobEventsReply(msgspec.Struct, kw_only=True):
    cancel: bool = False
    """The job was cancelled (or handed to another node): stop now and free its memory."""


class JobFinish(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Literal["succeeded", "failed"]
    error: dict[str, Any] | None = None
    """``{"code", "message", "field"?}`` when it failed."""
    steps: Annotated[int, Meta(ge=0)] = 0
    score: float | None = None
    passed: bool | None = None
    stopped: str = ""
    counters: dict[str, Any] = {}
    energy_j: Annotated[float, Meta(ge=0)] | None = None
    energy_estimated: bool = False
