"""Function manifests: one TOML file per function, decoded into a Manifest.

A manifest is what a deployer writes: which task runner serves it, where the weights
come from, what hardware it needs, how requests are batched and where it is in its
lifecycle. Problems are collected per file with the key and the reason, so
``colabhive manifest validate`` can report all of them at once.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .ensemble import Ensemble
from .errors import ConfigError

__all__ = [
    "Batching",
    "Ensemble",
    "Evaluation",
    "Guard",
    "Hardware",
    "Expert",
    "Experts",
    "EXPERT_TASKS",
    "Manifest",
    "ManifestProblem",
    "Source",
    "check_manifest",
    "load_manifests",
    "read_manifest",
    "validate_paths",
]

Name = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Lowercase function name.")]
DType = Literal["fp32", "fp16", "bf16", "int8"]
Lifecycle = Literal["candidate", "ready", "preferred", "retired"]


class Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where the model comes from: an installed Python package that ships weights, or a path."""

    package: str = ""
    path: str = ""
    adapter: str = ""
    """A PEFT adapter directory (relative to the manifest file) applied on top of the weights
    above: a version trained by the ``lora`` method is its base plus this."""
    artifact: str = ""
    """sha256 of the tar this version's directory came from (set when a training job lands it).
    A node fetches that tar from the gateway and reads the paths above inside it: nodes share
    no disk with the gateway."""

    def __post_init__(self) -> None:
        if bool(self.package) == bool(self.path) and (self.package or self.path):
            raise ValueError("give exactly one of `source.package` or `source.path`")
        if self.adapter and not (self.package or self.path):
            raise ValueError("`source.adapter` goes on top of a base: give `source.package` or `source.path` too")


class Guard(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a low-precision copy must keep of the fp32 one, checked by the node at load.

    The node runs the guard's inputs (``inputs``, else the manifest's ``examples`` as
    ``{"text": ...}``) through the model in fp32 and in the dtype it was placed in, and
    compares ``field`` of each output. Failing it, the node serves fp32 instead and says
    why in ``GET /v1/nodes`` (``dtype_notes``): a fast wrong answer is never the default.
    """

    metric: Annotated[
        Literal["cosine", "agreement"],
        Meta(description="cosine: the lowest cosine between the two copies' vectors; "
             "agreement: the share of inputs whose value is identical (labels, text)."),
    ] = "cosine"
    min: Annotated[float, Meta(ge=0, le=1, description="The lowest value the metric may take.")] = 0.995
    field: Annotated[
        str, Meta(description="Dotted path of the compared output value; empty = the [eval] field, else `embedding`.")
    ] = ""
    inputs: Annotated[
        list[dict[str, Any]], Meta(max_length=256, description="Inputs to compare on; empty = `examples` as text.")
    ] = []


class Hardware(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    device_kinds: Annotated[
        list[str], Meta(min_length=1, description="Device kinds that may host it, preferred first.")
    ] = msgspec.field(default_factory=lambda: ["cuda", "xpu", "cpu"])
    min_memory_mb: Annotated[int, Meta(ge=0, description="Free device memory the model needs.")] = 0
    dtypes: Annotated[list[DType], Meta(min_length=1, description="Dtypes it can run in, best first.")] = (
        msgspec.field(default_factory=lambda: ["fp32"])
    )
    devices: Annotated[int, Meta(ge=1, description="Devices one replica spans.")] = 1
    guard: Guard | None = None
    """Checked when the node places it in a dtype other than fp32 (see :class:`Guard`)."""


class Batching(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_batch: Annotated[int, Meta(ge=1, le=1024, description="Most inputs one forward pass takes.")] = 1
    max_wait_ms: Annotated[
        float, Meta(ge=0, le=1000, description="How long a poll may wait to fill a batch.")
    ] = 0.0
    queue_size: Annotated[
        int, Meta(ge=0, description="Most queued calls (429 above); 0 = hive.toml's limits.queue_size.")
    ] = 0


Metric = Literal["accuracy", "contains", "chrf", "mae_ratio", "r2", "knn_accuracy", "top1"]
LOWER_IS_BETTER = frozenset({"mae_ratio"})


class Evaluation(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The gate a version must pass to be promoted: run ``dataset`` through it on the hive.

    ``dataset`` is JSON Lines, one ``{"input": {...}, "expected": ..., "baseline": ...}`` per
    line (``baseline`` only for ``mae_ratio``), relative to the manifest file. ``field`` is the
    dotted path of the output value scored (``label``, ``predictions.0.value``).
    """

    dataset: Annotated[str, Meta(min_length=1)]
    metric: Metric
    threshold: float
    field: Annotated[str, Meta(min_length=1)]

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER


class Expert(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One member of an expert group: a LoRA adapter on the group's base, trained on one partition."""

    name: Name
    """The member's own name inside the group (``<group>-<taxon slug>``); answers name it."""
    taxon: Annotated[str, Meta(min_length=1, max_length=128)]
    """What its partition is: a column value (``history``), ``cluster-2``, ``difficulty-q1``."""
    adapter: Annotated[str, Meta(min_length=1)] = "."
    """The PEFT adapter directory, relative to the member's unpacked artifact (or to this
    manifest when ``artifact`` is empty)."""
    artifact: str = ""
    """sha256 of the child job's result tar, fetched by the node like any trained version."""
    centroid: Annotated[list[float], Meta(min_length=1, max_length=4096)]
    """Unit-length mean of the partition's prompts in the ``embed`` model's space."""
    size: Annotated[int, Meta(ge=0)] = 0
    """Training rows of its partition."""
    job: str = ""
    """The child job that trained it."""
    score: float | None = None
    """Its own held-out score from its job (the group's ``[eval]`` gates the whole group)."""


class Experts(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A group of experts on one base (the manifest's ``source``), routed by centroid per call.

    A call embeds its last user message (or its text) with ``embed``, ranks members by cosine to
    their centroids and uses the top ``k``: k=1 answers with that member alone, k>1 mixes the
    members' distributions (next-token for ``experts``, label for ``classifier-experts``)
    weighted by softmax(cosine / temperature) (c-BTM). A member's ``adapter`` is a PEFT adapter
    directory in an ``experts`` group and a head directory (``head.safetensors``) in a
    ``classifier-experts`` one."""

    embed: Source
    """The sentence encoder the centroids were computed with (the catalog's MiniLM)."""
    k: Annotated[int, Meta(ge=1, le=8)] = 1
    temperature: Annotated[float, Meta(gt=0, le=10)] = 0.1
    adapter_memory_mb: Annotated[int, Meta(ge=1, le=1 << 20)] = 256
    """A node keeps at most this much adapter weight in memory (least recently used goes first)."""
    strategy: str = ""
    """How the data was partitioned (column, cluster, difficulty): for the reader."""
    members: Annotated[list[Expert], Meta(min_length=1, max_length=256)]


class Manifest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    version: Annotated[str, Meta(pattern=r"^[0-9A-Za-z.+-]{1,32}$")] = "1.0.0"
    task: Annotated[str, Meta(min_length=1, description="Task runner: echo, embedding, ...")]
    description: str = ""
    lifecycle: Lifecycle = "ready"
    source: Source = msgspec.field(default_factory=Source)
    hardware: Hardware = msgspec.field(default_factory=Hardware)
    batching: Batching = msgspec.field(default_factory=Batching)
    visibility: Literal["public", "private"] = "public"
    """private: only callers whose API key belongs to ``tenant`` may see or call it."""
    tenant: str = ""
    domains: list[str] = []
    languages: list[str] = []
    options: dict[str, str | int | float | bool] = {}
    examples: list[str] = []
    """Typical requests in words; /auto matches callers' requests against them."""
    eval: Evaluation | None = None
    ensemble: Ensemble | None = None
    """Set: this function combines its members' answers on the gateway (no source, no node)."""
    experts: Experts | None = None
    """Set: an expert group on the base in ``source`` (task ``experts`` or ``classifier-experts``)."""
    file: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def resolve(self, rel: str) -> Path:
        """A path from the manifest, relative to the manifest file's directory."""
        p = Path(rel)
        return p if p.is_absolute() else Path(os.path.normpath(Path(self.file).parent / p))

    def eval_path(self) -> Path:
        assert self.eval is not None
        return self.resolve(self.eval.dataset)


class ManifestProblem(msgspec.Struct, frozen=True):
    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}"


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"unknown field `(?P<f>[^`]+)`")


def _problem_from_validation(file: str, exc: Exception) -> ManifestProblem:
    m = _AT.match(str(exc))
    msg, path = (m["msg"], m["path"] or "") if m else (str(exc), "")
    key = path.lstrip(".").replace("[", ".").replace("]", "")
    unknown = _UNKNOWN.search(msg)
    if unknown:
        key = f"{key}.{unknown['f']}" if key else unknown["f"]
    return ManifestProblem(file, key, msg)


def read_manifest(path: Path) -> tuple[Manifest | None, list[ManifestProblem]]:
    """Decode one file; semantic checks run in :func:`check_manifest`."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [ManifestProblem(file, "", f"cannot read: {exc.strerror}")]
    try:
        manifest = msgspec.toml.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        return None, [_problem_from_validation(file, exc)]
    except msgspec.DecodeError as exc:
        return None, [ManifestProblem(file, "", f"not valid TOML: {exc}")]
    manifest = msgspec.structs.replace(manifest, file=file)
    return manifest, check_manifest(manifest)


def check_manifest(m: Manifest) -> list[ManifestProblem]:
    from . import families  # they build on this module's Structs

    problems: list[ManifestProblem] = []
    fam = families.find(m.task)
    if fam is None:
        return [ManifestProblem(m.file, "task", f"unknown task {m.task!r}; known: {families.names()}"),
                *_check_eval(m)]
    if m.eval is not None and m.eval.metric not in fam.metrics:
        problems.append(ManifestProblem(m.file, "eval.metric", f"{m.eval.metric!r} does not score {m.task} outputs; "
                                        f"use {' or '.join(sorted(fam.metrics)) or 'no [eval]: it has no metric'}"))
    if m.ensemble is not None:
        return [*problems, *_check_ensemble(m, fam.combine_rules), *_check_eval(m)]
    if (m.task in EXPERT_TASKS) != (m.experts is not None):
        problems.append(ManifestProblem(m.file, "experts", f"task {m.task!r} needs an [experts] table"
                                        if m.experts is None else
                                        f"an [experts] table belongs to task 'experts' or 'classifier-experts', "
                                        f"not {m.task!r}"))
    problems.extend(_check_experts(m))
    if fam.runner.needs_source and not (m.source.package or m.source.path):
        problems.append(ManifestProblem(m.file, "source", f"task {m.task!r} needs a source package or path"))
    if m.visibility == "private" and not m.tenant:
        problems.append(ManifestProblem(m.file, "tenant", "a private function must name its tenant"))
    if m.source.package and importlib.util.find_spec(m.source.package) is None:
        problems.append(
            ManifestProblem(m.file, "source.package", f"package {m.source.package!r} is not installed")
        )
    problems.extend(_check_eval(m))
    guard = m.hardware.guard
    if guard is not None and not (guard.inputs or m.examples):
        problems.append(ManifestProblem(m.file, "hardware.guard.inputs",
                                        "the guard compares outputs on inputs: give `inputs` or the manifest's `examples`"))
    if m.source.adapter and not (m.resolve(m.source.adapter) / "adapter_config.json").is_file():
        problems.append(ManifestProblem(m.file, "source.adapter",
                                        f"{m.resolve(m.source.adapter)} is not a PEFT adapter (no adapter_config.json)"))
    if m.source.path:
        p = Path(m.source.path)
        if not p.is_absolute():
            p = Path(m.file).parent / p
        if not p.exists():
            problems.append(
                ManifestProblem(m.file, "source.path", f"{p} does not exist (trained models are built by `make models`)")
            )
    return problems


EXPERT_TASKS = frozenset({"experts", "classifier-experts"})
"""Tasks whose manifest is a group with an ``[experts]`` table."""
MEMBER_FILE = {"experts": ("adapter_config.json", "a PEFT adapter"),
               "classifier-experts": ("head.safetensors", "a classification head")}
"""What a member's directory must hold, per group task."""


def _check_experts(m: Manifest) -> list[ManifestProblem]:
    """What one file can say about an expert group: unique member names, centroids of one
    dimension, and (for members without an artifact) an adapter directory that exists."""
    if m.experts is None:
        return []
    problems: list[ManifestProblem] = []
    seen: set[str] = set()
    dims = {len(e.centroid) for e in m.experts.members}
    if len(dims) > 1:
        problems.append(ManifestProblem(m.file, "experts.members", f"centroids differ in length: {sorted(dims)}"))
    for i, e in enumerate(m.experts.members):
        if e.name in seen:
            problems.append(ManifestProblem(m.file, f"experts.members.{i}.name", f"{e.name!r} is named twice"))
        seen.add(e.name)
        need, what = MEMBER_FILE.get(m.task, MEMBER_FILE["experts"])
        if not e.artifact and not (m.resolve(e.adapter) / need).is_file():
            problems.append(ManifestProblem(m.file, f"experts.members.{i}.adapter",
                                            f"{m.resolve(e.adapter)} is not {what} (no {need})"))
    if m.experts.k > len(m.experts.members):
        problems.append(ManifestProblem(m.file, "experts.k",
                                        f"k is {m.experts.k}, but the group has {len(m.experts.members)} members"))
    return problems


def _check_eval(m: Manifest) -> list[ManifestProblem]:
    if m.eval is not None and not m.eval_path().exists():
        return [ManifestProblem(m.file, "eval.dataset", f"{m.eval_path()} does not exist")]
    return []


def _check_ensemble(m: Manifest, rules: frozenset[str]) -> list[ManifestProblem]:
    """What one file can say about an ensemble; its members are checked against the catalog."""
    from .families import all_families

    assert m.ensemble is not None
    if not rules:
        combinable = sorted(f.name for f in all_families() if f.combine_rules)
        return [ManifestProblem(m.file, "task", f"an ensemble of {m.task!r} outputs cannot be combined; "
                                f"ensembles exist for {', '.join(combinable)}")]
    problems = []
    if m.ensemble.combine not in rules:
        problems.append(ManifestProblem(m.file, "ensemble.combine", f"{m.ensemble.combine!r} does not apply to "
                                        f"{m.task} outputs; use {' or '.join(sorted(rules))}"))
    if m.source.package or m.source.path:
        problems.append(ManifestProblem(m.file, "source", "an ensemble has no weights of its own; drop [source]"))
    if m.ensemble.quorum > len(m.ensemble.members):
        problems.append(ManifestProblem(m.file, "ensemble.quorum",
                                        f"quorum {m.ensemble.quorum} exceeds the {len(m.ensemble.members)} members"))
    if len(set(m.ensemble.members)) < len(m.ensemble.members):
        problems.append(ManifestProblem(m.file, "ensemble.members", "a member is listed twice"))
    return problems


def check_members(manifests: list[Manifest]) -> list[ManifestProblem]:
    """Every ensemble's members exist, share its task and are not ensembles themselves."""
    by_ref = {m.ref: m for m in manifests}
    by_name: dict[str, list[Manifest]] = {}
    for m in manifests:
        by_name.setdefault(m.name, []).append(m)
    problems = []
    for m in manifests:
        if m.ensemble is None:
            continue
        for i, member in enumerate(m.ensemble.members):
            key = f"ensemble.members.{i}"
            found = [by_ref[member]] if member in by_ref else by_name.get(member, [])
            if not found:
                problems.append(ManifestProblem(m.file, key, f"no manifest declares {member!r}"))
            elif member.split("@", 1)[0] == m.name:
                problems.append(ManifestProblem(m.file, key, "an ensemble cannot include itself"))
            elif any(f.ensemble is not None for f in found):
                problems.append(
                    ManifestProblem(m.file, key, f"{member!r} is an ensemble; list its members instead"))
            elif any(f.task != m.task for f in found):
                problems.append(ManifestProblem(m.file, key, f"{member!r} is a {found[0].task} function; "
                                                f"this ensemble combines {m.task} answers"))
    return problems


def manifest_paths(target: Path) -> list[Path]:
    return sorted(target.glob("*.toml")) if target.is_dir() else [target]


def load_manifests(dirs: list[Path]) -> list[Manifest]:
    """Every manifest in ``dirs``; raises ConfigError listing every problem in every file."""
    manifests: list[Manifest] = []
    problems: list[ManifestProblem] = []
    seen: dict[str, str] = {}
    for d in dirs:
        if not d.exists():
            problems.append(ManifestProblem(str(d), "", "manifest directory does not exist"))
            continue
        for path in manifest_paths(d):
            m, probs = read_manifest(path)
            problems.extend(probs)
            if m is None:
                continue
            if m.ref in seen:
                problems.append(ManifestProblem(m.file, "name", f"{m.ref} is also declared in {seen[m.ref]}"))
                continue
            seen[m.ref] = m.file
            manifests.append(m)
    problems.extend(check_members(manifests))
    if problems:
        raise ConfigError("invalid manifests:\n" + "\n".join(f"  {p}" for p in problems))
    return manifests


def validate_paths(targets: list[Path]) -> int:
    """``colabhive manifest validate``: a line per problem (file: key: reason), a summary, and
    exit status 1 when anything is wrong."""
    problems: list[object] = []
    count = 0
    for p in targets:
        if not p.exists():
            print(f"{p}: no such file or directory")
            problems.append(p)
            continue
        for path in manifest_paths(p):
            count += 1
            m, probs = read_manifest(path)
            for prob in probs:
                print(prob)
            problems.extend(probs)
            if not probs and m is not None:
                print(f"{path}: ok ({m.ref}, task {m.task})")
    for prob in _members_beside(targets):
        print(prob)
        problems.append(prob)
    print(f"{count} manifest(s), {len(problems)} problem(s)")
    return 1 if problems else 0


def _members_beside(targets: list[Path]) -> list[ManifestProblem]:
    """Ensembles' members, looked up among the manifests beside each file given (so one
    ensemble file can be validated on its own)."""
    dirs = {t if t.is_dir() else t.parent for t in targets if t.exists()}
    pool = [m for d in sorted(dirs) for path in manifest_paths(d) if (m := read_manifest(path)[0]) is not None]
    given = {str(path) for t in targets if t.exists() for path in manifest_paths(t)}
    return [p for p in check_members(pool) if p.file in given]
