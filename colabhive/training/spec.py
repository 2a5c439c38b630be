"""The training job spec: what to train, from what, on which data, judged how, within what budget.

A spec is what a user submits (JSON or TOML) and what a node receives with its lease. It is
decoded in one call into :class:`JobSpec` (unknown fields rejected everywhere), then the
method's own ``HParams`` Struct decodes ``hparams``, so ``hparams.r`` is checked by the LoRA
method that knows what ``r`` means rather than by a catch-all dict. Every error is an
:class:`InvalidSpec` whose ``field`` is the dotted path of the offending key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..manifests import Hardware, Metric
from .errors import InvalidSpec

__all__ = ["Budget", "DatasetRef", "EvalSpec", "JobSpec", "MethodName", "decode_spec", "split_ref"]

MethodName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]
"""A method the plugins declare (``hive_training_methods``); checked against them at decode."""
OptimizerName = Literal["adamw", "muon"]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="sha256 of the dataset file, lowercase hex.")]
FunctionRef = Annotated[
    str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}(@[0-9A-Za-z.+-]{1,32})?$", description="name or name@version")
]
OutputRef = Annotated[
    str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}@[0-9A-Za-z.+-]{1,32}$", description="name@version to publish")
]
Column = Annotated[str, Meta(min_length=1, max_length=128)]


class DatasetRef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An uploaded dataset (the gateway stores it by content hash) and how its columns map."""

    id: Sha256
    """sha256 of the dataset file as uploaded: the same bytes always name the same data."""
    columns: dict[str, Column] = {}
    """Role the method needs → column in the file, e.g. ``{prompt = "question", response = "answer"}``.
    A role left out is looked up under its own name."""


class EvalSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the new version is judged; it becomes the version's manifest ``[eval]`` gate."""

    split: Annotated[float, Meta(gt=0, lt=1)] | None = None
    """Fraction of the dataset held out (never trained on); the forecast method holds out the tail."""
    dataset: Sha256 | None = None
    """Or a second uploaded dataset, same columns, used whole."""
    metric: Metric
    """Scored as the hive's evaluation scores it (``colabhive.registry.evaluation``)."""
    threshold: float
    """The gate: at least this (at most, for lower-is-better metrics such as ``mae_ratio``)."""
    max_rows: Annotated[int, Meta(ge=1, le=5000)] = 200
    """At most this many held-out rows go into the version's eval file (the gate's cost)."""

    def __post_init__(self) -> None:
        if (self.split is None) == (self.dataset is None):
            raise ValueError("give exactly one of `eval.split` (a fraction) or `eval.dataset` (an id)")


class Budget(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """When to stop: whichever limit comes first. Steps make a run reproducible; minutes bound its cost."""

    max_steps: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    max_minutes: Annotated[float, Meta(gt=0, le=7 * 24 * 60)] | None = None

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_minutes is None:
            raise ValueError("give `budget.max_steps`, `budget.max_minutes` or both")


class JobSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    method: MethodName
    """Built in: lora (adapter on a generation model), head (classifier over a frozen encoder),
    forecast (PatchTST from scratch), tabular (LightGBM from scratch); plugins add more."""
    base: FunctionRef | None = None
    """The function whose model is the starting point (``smollm2-chat``, ``minilm-embed@1.0.0``);
    none for methods that start from scratch."""
    dataset: DatasetRef
    eval: EvalSpec
    optimizer: OptimizerName | None = None
    """adamw, or muon on the hidden weight matrices (AdamW on the rest); none = the method's default."""
    hardware: Hardware = msgspec.field(default_factory=Hardware)
    """Device kinds, memory and dtype (the first of ``dtypes`` is trained in)."""
    budget: Budget
    checkpoint_every: Annotated[int, Meta(ge=1)] = 50
    """Steps between checkpoints: what a lost lease costs at most."""
    seed: Annotated[int, Meta(ge=0, le=2**32 - 1)] = 0
    output: OutputRef
    """``name@version`` of the function version the job produces."""
    hparams: dict[str, Any] = {}
    """Decoded by the method's own HParams Struct (see ``colabhive.training.methods``)."""

    @property
    def output_name(self) -> str:
        return self.output.split("@", 1)[0]

    @property
    def output_version(self) -> str:
        return self.output.split("@", 1)[1]


def split_ref(ref: str) -> tuple[str, str | None]:
    """``name@version`` → (name, version); a bare name has no version."""
    name, _, version = ref.partition("@")
    return name, version or None


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"unknown field `(?P<f>[^`]+)`")


def _field(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """msgspec's ``... - at `$.eval.split``` → ("eval.split", message)."""
    m = _AT.match(str(exc))
    msg, path = (m["msg"], m["path"] or "") if m else (str(exc), "")
    key = path.lstrip(".").replace("[", ".").replace("]", "")
    unknown = _UNKNOWN.search(msg)
    if unknown:
        key = f"{key}.{unknown['f']}" if key else unknown["f"]
    # a __post_init__ message quotes the field it is about (`eval.split`): more precise than its Struct
    quoted = re.search(r"`([a-z_]+(?:\.[a-z_]+)*)`", msg)
    if quoted and not unknown and (not key or quoted[1].startswith(key + ".")):
        key = quoted[1].removeprefix(prefix + ".") if prefix else quoted[1]
    full = ".".join(p for p in (prefix, key) if p)
    return full, msg


def decode_spec(data: bytes | str, fmt: Literal["json", "toml"] | None = None) -> tuple[JobSpec, Any]:
    """The spec and its method's decoded hparams; :class:`InvalidSpec` names the field otherwise.

    ``fmt`` None guesses: JSON when the first non-blank character is ``{``, else TOML.
    """
    from .methods import get_method

    raw = data.encode() if isinstance(data, str) else data
    if fmt is None:
        fmt = "json" if raw.lstrip()[:1] == b"{" else "toml"
    try:
        spec = msgspec.json.decode(raw, type=JobSpec) if fmt == "json" else msgspec.toml.decode(raw, type=JobSpec)
    except msgspec.ValidationError as exc:
        field, msg = _field(exc)
        raise InvalidSpec(msg, field=field or None) from None
    except msgspec.DecodeError as exc:
        raise InvalidSpec(f"not valid {fmt.upper()}: {exc}") from None
    try:
        method = get_method(spec.method)
    except KeyError as exc:
        raise InvalidSpec(str(exc.args[0]), field="method") from None
    try:
        hparams = msgspec.convert(spec.hparams, type=method.HParams)
    except msgspec.ValidationError as exc:
        field, msg = _field(exc, "hparams")
        raise InvalidSpec(msg, field=field) from None
    method.check_spec(spec, hparams)
    return spec, hparams
