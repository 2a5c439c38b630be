"""Why a function is not served yet: the ``not_served`` list of ``GET /healthz``.

Each entry says what a plain call of the name would run (``version``), a ``state`` a
program can wait on, and a ``reason`` in words:

- ``loading``: a node is loading it; it is served in moments.
- ``assigned``: placement gave it to a node that has not loaded it yet (just joined, or
  its load failed: that node's log says which).
- ``no_node``: no node is connected, so nothing can be placed.
- ``unplaced``: the connected nodes cannot host it (the planner's reason: device kind,
  dtype, memory, ``node.functions``); it stays unserved until such a node joins.
- ``members``: an ensemble with fewer than ``quorum`` of its members served.
- ``not_promoted``: no ready or preferred version, so a plain call has nothing to run.

``loading``, ``assigned`` and ``no_node`` can resolve on their own; ``unplaced`` and
``not_promoted`` need a different node or an operator.
"""

from __future__ import annotations

from typing import Any

from .hive import Hive

__all__ = ["SETTLED", "not_served", "unserved_reason"]

SETTLED = frozenset({"unplaced", "not_promoted"})
"""States that do not change without a new node or an operator's action."""


def unserved_reason(hive: Hive, ref: str) -> tuple[str, str]:
    """(state, reason) for a version that is not served."""
    entry = hive.catalog.get(ref)
    if entry is not None and entry.manifest.ensemble is not None:
        members = hive.member_refs(entry)
        held = [r for r in members if hive.serving(r)]
        missing = [f"{r} ({unserved_reason(hive, r)[1]})" for r in members if r not in held]
        quorum = entry.manifest.ensemble.quorum
        return "members", (f"an ensemble needs {quorum} of its members served, {len(held)} are; "
                           f"not served: {'; '.join(missing) or 'none'}")
    live = [n for n in hive.nodes.live() if not n.draining]
    loading = sorted(n.name for n in live if ref in n.loading)
    if loading:
        return "loading", f"loading on {', '.join(loading)}"
    if not live:
        return "no_node", "no node is connected to the hive"
    plan = hive.current_plan()
    reason = plan.reasons.get(ref)
    if reason is not None:
        return "unplaced", reason
    assigned = sorted(n.name for n in live if any(p.ref == ref for p in plan.hosting.get(n.id, [])))
    if assigned:
        return "assigned", (f"assigned to {', '.join(assigned)}, not loaded yet "
                            "(if it stays so, that node's log says why its load failed)")
    return "unplaced", f"none of the {len(live)} connected node(s) is given it by placement"


def not_served(hive: Hive) -> list[dict[str, Any]]:
    """Every function whose plain call has nothing to run on now, with why."""
    out = []
    for name in sorted(hive.lifecycle.names):
        ref = hive.lifecycle.default_ref(name)
        if ref is None:
            out.append({"function": name, "version": None, "state": "not_promoted",
                        "reason": "no version is ready or preferred (promote one)"})
        elif not hive.serving(ref):
            state, reason = unserved_reason(hive, ref)
            out.append({"function": name, "version": ref, "state": state, "reason": reason})
    return out
