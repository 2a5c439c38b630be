"""Reconciling a node with the gateway's placement: what to load and what to drop.

The gateway sends the whole desired set (``hosting``), never a delta, so a node that
missed a message converges on the next one and applying the same set twice does nothing.
A model matches a placement only when its ref, device and dtype all match; a model held
on the wrong device or in the wrong dtype is dropped and loaded again as asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..manifests import Manifest
from ..families import find
from ..wire import Device, Placement

__all__ = ["Diff", "allowed_by", "diff"]


@dataclass(slots=True)
class Diff:
    load: list[tuple[Manifest, Device, str]] = field(default_factory=list)
    """Placements to load, in the gateway's order."""
    unload: list[str] = field(default_factory=list)
    """Refs held now that the desired set does not list (as held)."""
    problems: dict[str, str] = field(default_factory=dict)
    """ref → why this node cannot take that placement (logged; the gateway sees it never loads)."""


def allowed_by(only: Sequence[str], m: Manifest) -> bool:
    """Whether ``node.functions`` (names or refs; empty = anything) admits this manifest."""
    return not only or m.name in only or m.ref in only


def diff(
    desired: Sequence[Placement],
    held: Mapping[str, tuple[str, str]],
    manifests: Mapping[str, Manifest],
    devices: Sequence[Device],
    only: Sequence[str] = (),
) -> Diff:
    """Compare the desired set with what is held (ref → (device id, dtype)).

    Refs being loaded right now count as held by the caller (pass them in ``held``), so a
    placement is never loaded twice; one that stops being wanted mid-load is dropped by
    the next reconcile after it lands.
    """
    out = Diff()
    by_id = {d.id: d for d in devices}
    want: dict[str, Placement] = {}
    for p in desired:
        if p.ref in want:
            out.problems[p.ref] = f"placed twice ({want[p.ref].device} and {p.device}); a node holds one copy"
            continue
        want[p.ref] = p
    for ref, (dev, dtype) in held.items():
        p = want.get(ref)
        if p is None or (p.device, p.dtype) != (dev, dtype):
            out.unload.append(ref)
    for ref, p in want.items():
        if held.get(ref) == (p.device, p.dtype):
            continue
        m = manifests.get(ref)
        d = by_id.get(p.device)
        if m is None:
            out.problems[ref] = "not among the manifests the gateway sent at registration"
        elif not allowed_by(only, m):
            out.problems[ref] = f"this node's node.functions ({', '.join(only)}) excludes it"
        elif find(m.task) is None:
            out.problems[ref] = f"no runner for task {m.task!r} in this node's version"
        elif d is None:
            out.problems[ref] = f"no device {p.device!r} here (devices: {', '.join(by_id)})"
        elif p.dtype not in d.dtypes:
            out.problems[ref] = f"{d.id} does not list dtype {p.dtype!r} (it lists {', '.join(d.dtypes)})"
        else:
            out.load.append((m, d, p.dtype))
    return out
