"""Ensembles: several experts answer the same input and one declared rule combines them.

An ensemble is a manifest with an ``[ensemble]`` table: its members (function names, or
``name@version`` to pin one) all share the ensemble's ``task``, so a caller sends the input
it would send any member and gets the same output shape back, plus an ``ensemble`` object
saying what each member answered and with what weight. It runs on the gateway (members are
ordinary calls, placed and traced like any other), so no node ever loads it.

Rules:

- ``vote``: each member's label counts once; a tie goes to the tied label with the most
  summed probability, so the answer never depends on member order. For labelling outputs only.
- ``mean``: probability distributions, values and forecasts (point and quantiles, element by
  element) are averaged with equal weights; the label is the averaged distribution's argmax.
- ``score_weighted``: the same averages, weighted by each member's latest evaluation on the
  hive (inverted for lower-is-better metrics such as ``mae_ratio``), so a better-measured
  member counts for more. Members not evaluated yet take the mean weight of those that are
  (all equal when none is), and the answer says so.

The combined ``score``/``probabilities`` stay probabilities: under ``vote`` a label's score
is its mean probability over the members, not its share of votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .errors import EnsembleError

__all__ = ["Ensemble", "EnsembleError", "Rule", "combine", "weights_for"]

Rule = Literal["vote", "mean", "score_weighted"]
"""Which rules a task accepts, and how it applies them, is its family's (``colabhive/families``)."""


class Ensemble(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    members: Annotated[
        list[Annotated[str, Meta(min_length=1)]],
        Meta(min_length=2, max_length=8, description="Functions (name, or name@version) answering each input."),
    ]
    combine: Rule
    quorum: Annotated[int, Meta(ge=1, description="Members that must answer; fewer is a 502.")] = 1


def weights_for(scores: Sequence[tuple[float, bool] | None]) -> tuple[list[float], str]:
    """Each member's weight from its evaluation ``(score, lower_is_better)``, and how they were set."""
    raw = [None if s is None else (1.0 / max(s[0], 1e-9) if s[1] else max(s[0], 0.0)) for s in scores]
    known = [w for w in raw if w is not None]
    if not known or sum(known) <= 0:
        return [1.0] * len(scores), "equal: no member has an evaluation on the hive yet"
    fill = sum(known) / len(known)
    why = "each member's latest evaluation score on the hive"
    if len(known) < len(raw):
        why += "; members not evaluated yet take the mean weight of the others"
    return [fill if w is None else w for w in raw], why


def combine(task: str, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
    """One output in the members' own shape from theirs (only members that answered)."""
    from .families import family  # families build on this module's types

    if not outputs:
        raise EnsembleError("no member answered")
    w = [1.0] * len(outputs) if rule != "score_weighted" else _normal(weights)
    return family(task).combine(rule, outputs, w)


def _normal(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [x / total for x in weights] if total > 0 else [1.0 / len(weights)] * len(weights)
