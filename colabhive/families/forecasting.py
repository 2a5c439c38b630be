"""forecasting: the next values of a series. /auto sends it runs of numbers; ensembles
average forecasts and quantiles (a forecast has no label to vote on)."""

from __future__ import annotations

from typing import Any

from ..auto.parse import Part, horizon_of, series_of
from ..ensemble import Rule
from ..errors import EnsembleError
from ..runners.forecasting import ForecastingRunner
from .base import TaskFamily
from .combining import average

__all__ = ["DEFAULT_MAX_HORIZON", "Forecasting"]

DEFAULT_MAX_HORIZON = 48
"""An /auto part's horizon is capped by the expert's ``options.max_horizon``, this when unset."""


class Forecasting(TaskFamily):
    name = "forecasting"
    runner = ForecastingRunner
    unsupported = frozenset({"openai"})
    combine_rules = frozenset({"mean", "score_weighted"})
    auto_shape = "series"
    metrics = frozenset({"mae_ratio"})

    def combine(self, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
        if rule == "vote":
            raise EnsembleError("a forecast has no label to vote on; use mean or score_weighted")
        levels = sorted(set.intersection(*(set(o["quantiles"]) for o in outputs)), key=float)
        return {
            "forecast": average([o["forecast"] for o in outputs], weights),
            "quantiles": {lv: average([o["quantiles"][lv] for o in outputs], weights) for lv in levels},
            "model": "ensemble(" + ", ".join(str(o.get("model", "?")) for o in outputs) + ")",
        }

    def recognise(self, text: str) -> dict[str, Any] | None:
        """A run of at least eight numbers, and the horizon the words ask for (six by default)."""
        series = series_of(text)
        return None if series is None else {"series": series, "horizon": horizon_of(text)}

    def from_object(self, obj: dict[str, Any]) -> Part | None:
        if "series" not in obj:
            return None
        return Part(str(obj), "series", {"series": obj["series"], "horizon": obj.get("horizon", 6)})

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        limit = int(options.get("max_horizon", DEFAULT_MAX_HORIZON))
        p = part.payload
        return {"series": p["series"], "horizon": max(1, min(p["horizon"], limit))}
