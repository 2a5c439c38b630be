"""``colabhive models export``: a registry version out of the hive, as a file a builder can use elsewhere.

A LoRA version is its base plus a PEFT adapter (:mod:`colabhive.training.methods.lora`), so it
leaves in one of three forms:

- the adapter alone (``adapter_config.json`` + ``adapter_model.safetensors``, byte for byte
  what the hive serves), for ``peft.PeftModel.from_pretrained(base, dir)``;
- ``merged``: the base with the adapter folded into its weights (``merge_and_unload``, fp32 as
  the generation runner serves it), saved with its tokenizer, for
  ``AutoModelForCausalLM.from_pretrained(dir)`` with no peft at all;
- several adapters of one base mixed with weights into one (peft's ``add_weighted_adapter``):
  ``cat`` stacks them (rank = the sum; the update is exactly the weighted sum of theirs),
  ``svd`` refactors that sum at the largest rank (an approximation), ``linear`` mixes the A and
  B matrices themselves (same ranks only; cheap, and not the sum of the updates). With
  ``merged`` the mix is then folded into the base.

Any other version (a head, a forecaster, a LightGBM model, a base model) leaves as the files
the gateway holds, provenance included: a trained one is a self-contained manifest directory
(its ``source.artifact`` is dropped, since the files are now here, not on a gateway).
Merging is refused for those (there is no adapter to fold), from the response's headers
before a whole model's weights are downloaded for nothing.

The base weights come from ``--base DIR`` or from the gateway; either way they must be the
ones the adapters were trained on when both digests are recorded. Everything is written into
a staging directory beside ``out`` and renamed into place at the end, so a failed export
leaves nothing behind. Every argument is checked before the first request.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import msgspec

from ..errors import ExportError
from ..registry.client import Progress, VersionFiles
from .tomlout import dumps

__all__ = ["Adapter", "Combination", "ExportRecord", "Registry", "export", "parse_weights", "read_adapter"]

Combination = Literal["cat", "linear", "svd"]
COMBINATIONS: tuple[str, ...] = get_args(Combination)
Say = Callable[[str], None]
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class Registry(Protocol):
    """Where versions come from: a gateway, through :class:`colabhive.sdk.Client`."""

    def version_files(self, ref: str, into: Path, progress: Progress | None = None,
                      before: Callable[[str], None] | None = None) -> VersionFiles: ...


class _Fetcher:
    """Downloads into one staging directory, each with its own progress bar if the caller draws one."""

    def __init__(self, registry: Registry, staging: Path, progress: Callable[[str], Progress | None]) -> None:
        self.registry, self.staging, self.progress, self.count = registry, staging, progress, 0

    def __call__(self, ref: str, before: Callable[[str], None] | None = None) -> VersionFiles:
        self.count += 1
        return self.registry.version_files(ref, self.staging / f"v{self.count}", progress=self.progress(ref),
                                           before=before)


class ExportRecord(msgspec.Struct, kw_only=True):
    """``export.json``, written into every export: what it is and where it came from."""

    kind: Literal["adapter", "merged", "files"]
    versions: list[str]
    weights: list[float] | None = None
    """The mix's weights, one per version (none for a single version)."""
    combination: Combination | None = None
    base: str | None = None
    """The base model the adapters were trained on (``name@version``)."""
    base_sha256: str | None = None
    provenance: dict[str, Any] = {}
    """Each version's ``provenance.json`` as the gateway recorded it (job, dataset, spec, metrics)."""
    exported_at: float
    colabhive: str


@dataclass(frozen=True)
class Adapter:
    """A LoRA version's adapter, as read from its fetched files."""

    ref: str
    dir: Path
    r: int
    base: str
    """The base it was trained on, ``name@version`` ("" if the version does not say)."""
    base_sha256: str
    """That base's registry digest when the job ran ("" if none was recorded)."""


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def read_adapter(v: VersionFiles) -> Adapter | None:
    """The adapter in a fetched LoRA version; None for any other kind of version."""
    manifest = v.path / "manifest.toml"
    if v.source != "trained" or not manifest.is_file():
        return None
    doc = msgspec.toml.decode(manifest.read_bytes())
    rel = (doc.get("source") or {}).get("adapter")
    if not rel:
        return None
    folder = (v.path / rel).resolve()
    if not folder.is_relative_to(v.path.resolve()) or not (folder / "adapter_config.json").is_file():
        raise ExportError(f"{v.ref} names an adapter at {rel!r} that its files do not hold")
    config = _json(folder / "adapter_config.json")
    prov, trained = _json(v.path / "provenance.json"), _json(v.path / "training.json")
    base = trained.get("base") or prov.get("base") or ""  # the node's resolved name@version first
    return Adapter(ref=v.ref, dir=folder, r=int(config["r"]), base=base,
                   base_sha256=prov.get("base_artifact_sha256") or "")


def parse_weights(text: str | None, n: int) -> list[float] | None:
    """``"0.7,0.3"`` → [0.7, 0.3], one per version; equal weights (summing to 1) when not given."""
    if text is None:
        return [1.0 / n] * n if n > 1 else None
    if n == 1:
        raise ExportError("--weights mixes several versions; give two or more name@version")
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise ExportError(f"--weights takes numbers separated by commas (like 0.7,0.3), not {text!r}") from None
    if len(weights) != n:
        raise ExportError(f"--weights has {len(weights)} value{'s' * (len(weights) != 1)} for {n} versions; "
                          "give one weight per version, in the same order")
    if not all(math.isfinite(w) for w in weights) or not any(weights):
        raise ExportError(f"--weights must be finite and not all zero, not {text!r}")
    return weights


def _check_request(refs: list[str], out: Path, merged: bool, weights: str | None, combination: str | None,
                   base_dir: Path | None) -> list[float] | None:
    """Everything that can be refused before a byte is downloaded."""
    for ref in refs:
        if "@" not in ref or ref.startswith("@") or ref.endswith("@"):
            raise ExportError(f"name a version as name@version, not {ref!r}")
    if len(set(refs)) != len(refs):
        raise ExportError("a version is named twice; to weigh one more, raise its weight")
    if combination is not None and combination not in COMBINATIONS:
        raise ExportError(f"--combination is one of {', '.join(COMBINATIONS)}, not {combination!r}")
    if combination is not None and len(refs) == 1:
        raise ExportError("--combination mixes several adapters; give two or more name@version")
    if base_dir is not None and not merged and len(refs) == 1:
        raise ExportError("--base is used to merge (--merged) or to mix several adapters; "
                          "an adapter alone is exported without its base")
    if base_dir is not None and not (base_dir / "config.json").is_file():
        raise ExportError(f"--base {base_dir}: no config.json there; point it at a transformers model directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} is not an empty directory; export writes into a new or empty one")
    return parse_weights(weights, len(refs))


def _trained_on(a: Adapter) -> str:
    digest = f"sha256 {a.base_sha256[:12]}…" if a.base_sha256 else "no digest recorded"
    return f"{a.ref} was trained on {a.base or 'an unrecorded base'} ({digest})"


def _one_base(adapters: list[Adapter]) -> None:
    """Adapters of one base: the same recorded digest (two names for the same weights are one
    base), or, where a digest is missing, the same base name@version."""
    first = adapters[0]
    for other in adapters[1:]:
        if first.base_sha256 and other.base_sha256:
            same = first.base_sha256 == other.base_sha256
        else:
            same = bool(first.base) and first.base == other.base
        if not same:
            raise ExportError(f"{_trained_on(first)}, but {_trained_on(other)}: only adapters of one base "
                              "can be merged")


def _check_ranks(adapters: list[Adapter], combination: Combination) -> None:
    ranks = {a.r for a in adapters}
    if combination == "linear" and len(ranks) > 1:
        listed = ", ".join(f"{a.ref} r={a.r}" for a in adapters)
        raise ExportError(f"--combination linear mixes the A and B matrices themselves, so the ranks must be "
                          f"equal ({listed}); use cat (exact, rank = the sum) or svd")


def _base_digest(folder: Path) -> str:
    """The digest a model directory's own ``provenance.json`` records (how the registry names it)."""
    return (_json(folder / "provenance.json").get("artifact") or {}).get("sha256") or ""


def _resolve_base(adapter: Adapter, base_dir: Path | None, fetch: _Fetcher, say: Say) -> tuple[Path, str]:
    """The base's weights (and where they came from, in words): ``--base``, else fetched from
    the gateway; checked against the digest the adapter's job recorded, so an adapter is
    never merged into other weights than it was trained on."""
    want = adapter.base_sha256
    if base_dir is not None:
        got, where = _base_digest(base_dir), f"--base {base_dir}"
    else:
        if not adapter.base or "@" not in adapter.base:
            raise ExportError(f"{adapter.ref} does not record which version of its base it was trained on "
                              f"({adapter.base or 'none'}); give the base weights with --base DIR")
        say(f"fetching the base {adapter.base} from the gateway (--base DIR uses local weights instead)")
        fetched = fetch(adapter.base)
        if fetched.source == "trained" or not (fetched.path / "config.json").is_file():
            raise ExportError(f"the base {adapter.base} is not a transformers model directory on the gateway; "
                              "give the base weights with --base DIR")
        base_dir, got, where = fetched.path, fetched.sha256, f"the gateway's {adapter.base}"
    if want and got and want != got:
        raise ExportError(f"{where} has digest {got[:12]}…, but {adapter.ref} was trained on "
                          f"{adapter.base or 'its base'} with digest {want[:12]}…; give the original weights "
                          "with --base DIR")
    if want and not got:
        say(f"note: {where} records no digest, so it cannot be checked against the base {adapter.ref} was "
            "trained on")
    return base_dir, where


def _build(lora: list[Adapter], mix: list[float] | None, how: Combination, folder: Path, where: str) -> Any:
    """The PeftModel to save or merge: one adapter on its base, or the weighted mix of several.

    peft and torch say an adapter does not fit a base (another architecture, other shapes)
    with a RuntimeError or ValueError deep in a state dict load; it is said here in words."""
    from peft import PeftModel

    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            if len(lora) == 1:
                return PeftModel.from_pretrained(_load_base(folder), str(lora[0].dir))
            assert mix is not None
            return _mix(lora, mix, how, folder)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        refs = " + ".join(a.ref for a in lora)
        raise ExportError(f"{refs} does not fit the base in {where}: {first}") from None


def _load_base(folder: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _mix(adapters: list[Adapter], weights: list[float], combination: Combination, base_dir: Path) -> Any:
    """A PeftModel whose only adapter, ``default``, is the weighted mix of ``adapters``."""
    from peft import PeftModel

    names = [f"v{i}" for i in range(len(adapters))]
    model = PeftModel.from_pretrained(_load_base(base_dir), str(adapters[0].dir), adapter_name=names[0])
    for name, a in zip(names[1:], adapters[1:], strict=True):
        model.load_adapter(str(a.dir), adapter_name=name)
    # "default" is the name save_pretrained writes at the top of the directory (others go in subfolders)
    model.add_weighted_adapter(names, weights, "default", combination_type=combination)
    model.set_adapter("default")
    for name in names:
        model.delete_adapter(name)
    return model


def _write_merged(model: Any, base_dir: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    model.merge_and_unload().save_pretrained(out)  # safetensors
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)


def _copy_adapter(adapter: Adapter, out: Path) -> None:
    out.mkdir(parents=True)
    for name in (*ADAPTER_FILES, "README.md"):
        if (adapter.dir / name).is_file():
            shutil.copy2(adapter.dir / name, out / name)


def _keep_files(v: VersionFiles, out: Path) -> None:
    """The files as the gateway holds them, moved (not copied: they may be a whole model's
    weights); a trained manifest loses ``source.artifact``, which would send a node to a
    gateway for files that are now right here."""
    v.path.rename(out)
    manifest = out / "manifest.toml"
    if v.source == "trained" and manifest.is_file():
        doc = msgspec.toml.decode(manifest.read_bytes())
        (doc.get("source") or {}).pop("artifact", None)
        manifest.write_text(dumps(doc))


def _version() -> str:
    try:
        return importlib.metadata.version("colabhive")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _adapters_only(ref: str) -> Callable[[str], None]:
    """Merging or mixing takes LoRA versions (trained ones): a version by path or package is a
    whole model, refused from the response's headers before its weights are downloaded."""
    def check(source: str) -> None:
        if source != "trained":
            raise ExportError(f"{ref} is not a LoRA adapter (a whole model, by {source}), so there is nothing "
                              "to merge or mix; export it alone, without --merged")
    return check


def export(refs: list[str], out: Path, *, registry: Registry, merged: bool = False, weights: str | None = None,
           combination: str | None = None, base_dir: Path | None = None, say: Say = print,
           progress: Callable[[str], Progress | None] = lambda ref: None) -> ExportRecord:
    """Write ``refs`` into ``out`` as the module docstring describes; the record written as ``export.json``.

    ``progress(ref)`` may return a callback for that download (the CLI draws a bar)."""
    out = out.absolute()
    mix = _check_request(refs, out, merged, weights, combination, base_dir)
    how: Combination = combination or "cat"  # type: ignore[assignment]
    staging = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    fetch = _Fetcher(registry, staging, progress)
    try:
        fetched = [fetch(ref, _adapters_only(ref) if len(refs) > 1 or merged else None) for ref in refs]
        provenance = {v.ref: _json(v.path / "provenance.json") for v in fetched}  # read before files move
        adapters = [read_adapter(v) for v in fetched]
        result = staging / "out"
        plain = [v.ref for v, a in zip(fetched, adapters, strict=True) if a is None]
        if plain and (len(refs) > 1 or merged):  # trained, but a head, a forecaster, a table model
            raise ExportError(f"{plain[0]} is not a LoRA adapter (a trained model of its own), so there is "
                              "nothing to merge or mix; export it alone, without --merged")
        if plain:  # one version: its files as they are (their provenance was read above, before they move)
            _keep_files(fetched[0], result)
            record = ExportRecord(kind="files", versions=refs, provenance=provenance,
                                  exported_at=time.time(), colabhive=_version())
        else:
            lora: list[Adapter] = [a for a in adapters if a is not None]
            _one_base(lora)
            _check_ranks(lora, how)
            base = lora[0]
            if len(lora) == 1 and not merged:
                _copy_adapter(base, result)
            else:
                folder, where = _resolve_base(base, base_dir, fetch, say)
                say(f"merging into {where}" if len(lora) == 1 else f"mixing {len(lora)} adapters ({how}) on {where}")
                model = _build(lora, mix, how, folder, where)
                if merged:
                    _write_merged(model, folder, result)
                else:
                    model.save_pretrained(str(result))
            record = ExportRecord(kind="merged" if merged else "adapter", versions=refs, weights=mix,
                                  combination=how if len(lora) > 1 else None, base=base.base or None,
                                  base_sha256=base.base_sha256 or None, provenance=provenance,
                                  exported_at=time.time(), colabhive=_version())
        kept = fetched[0].path / "provenance.json"  # (moved already when the files are the export)
        if len(fetched) == 1 and kept.is_file():
            shutil.copy2(kept, result / "provenance.json")
        (result / "export.json").write_bytes(msgspec.json.format(msgspec.json.encode(record)) + b"\n")
        if out.exists():
            out.rmdir()  # checked empty above
        result.rename(out)
        return record
    finally:
        shutil.rmtree(staging, ignore_errors=True)

