"""The quality guard a low-precision copy passes before it serves (``[hardware.guard]``).

bf16 on a CPU with AVX-512 BF16 or AMX runs an encoder two to four times faster than fp32,
but whether the answers survive the cast depends on the model, so it is measured, per
model, on the node that will serve it: the guard's inputs go through an fp32 copy and the
low-precision copy, and the copy serves only when its outputs stay within the guard. A
failure is not an error: the fp32 copy serves, and the reason travels to ``/v1/nodes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..manifests import Guard, Manifest
from ..registry.evaluation import field_value
from ..runners import Runner

__all__ = ["GuardResult", "check_guard", "guard_field", "guard_inputs"]


@dataclass(slots=True, frozen=True)
class GuardResult:
    passed: bool
    value: float
    """The lowest cosine, or the share of identical outputs."""
    n: int
    note: str
    """One sentence for people: what was compared and how it fell."""


def guard_field(m: Manifest, guard: Guard) -> str:
    if guard.field:
        return guard.field
    return m.eval.field if m.eval is not None else "embedding"


def guard_inputs(m: Manifest, guard: Guard, input_type: type[msgspec.Struct]) -> list[Any]:
    """The inputs, typed as the runner takes them; a ValueError names the one that does not fit."""
    raw = guard.inputs or [{"text": e} for e in m.examples]
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(msgspec.convert(item, type=input_type))
        except msgspec.ValidationError as exc:
            src = f"hardware.guard.inputs[{i}]" if guard.inputs else f"examples[{i}] (as {{\"text\": ...}})"
            raise ValueError(f"{src} is not an input of {m.ref}: {exc}") from None
    return out


def _cosine(a: Any, b: Any) -> float:
    if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b) or not a:
        return -1.0
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    na, nb = math.sqrt(sum(float(x) ** 2 for x in a)), math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / (na * nb) if na and nb else -1.0


def _values(runner: Runner, inputs: list[Any], field: str) -> list[Any]:
    return [field_value(msgspec.to_builtins(o), field) for o in runner.run(inputs)]


def check_guard(
    m: Manifest, dtype: str, reference: Runner, candidate: Runner, inputs: list[Any] | None = None
) -> GuardResult:
    """Compare ``candidate`` (in ``dtype``) with ``reference`` (fp32) on the guard's inputs."""
    guard = m.hardware.guard
    assert guard is not None
    field = guard_field(m, guard)
    inputs = inputs if inputs is not None else guard_inputs(m, guard, type(reference).input_type(1 << 30))
    ref, got = _values(reference, inputs, field), _values(candidate, inputs, field)
    if guard.metric == "cosine":
        if any(not isinstance(v, list) for v in ref):
            return GuardResult(False, -1.0, len(inputs),
                               f"the guard's field {field!r} is not a vector in {m.ref}'s output; cosine needs one")
        value = min(_cosine(a, b) for a, b in zip(ref, got))
        what = f"lowest cosine of {field} to fp32 over {len(inputs)} inputs"
    else:
        same = sum(a == b for a, b in zip(ref, got))
        value = same / len(inputs)
        what = f"share of inputs whose {field} equals fp32's ({same} of {len(inputs)})"
    passed = value >= guard.min
    verdict = "passed" if passed else "failed"
    return GuardResult(passed, value, len(inputs),
                       f"{dtype} {verdict} its guard: {what} = {value:.6f} (needs ≥ {guard.min})")


def load_guarded(
    m: Manifest, dtype: str, build: Callable[[str], Runner]
) -> tuple[Runner, str]:
    """The runner that will serve, and why it runs in its dtype ("" when simply as placed).

    With a guard and a low-precision ``dtype``: an fp32 copy is loaded first as the
    reference, so for the check both copies are in memory at once (the manifest's
    ``min_memory_mb`` should allow for that); the loser is dropped before serving starts.
    """
    guard = m.hardware.guard
    if dtype == "fp32":
        return _loaded(build("fp32")), ""
    if guard is None:
        return _loaded(build(dtype)), f"{dtype} as placed; the manifest declares no [hardware.guard] to check it"
    reference = _loaded(build("fp32"))
    try:
        inputs = guard_inputs(m, guard, type(reference).input_type(1 << 30))
    except ValueError as exc:
        return reference, f"serving fp32: the guard could not run ({exc})"
    candidate = _loaded(build(dtype))
    result = check_guard(m, dtype, reference, candidate, inputs)
    if result.passed:
        del reference
        return candidate, result.note
    del candidate
    if "fp32" not in m.hardware.dtypes:
        raise RuntimeError(f"{result.note}, and the manifest does not accept fp32 to fall back to")
    return reference, f"{result.note}; serving fp32"


def _loaded(runner: Runner) -> Runner:
    runner.load()
    return runner
