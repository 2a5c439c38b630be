"""The series the forecasting functions are trained and judged on, and their eval lines.

Both come from datasets bundled with statsmodels (no download). Each eval line is one
rolling origin: the history up to it as ``input.series``, the true next values as
``expected`` and the seasonal-naive forecast as ``baseline`` (what ``mae_ratio`` divides
by). Rerun ``python -m colabhive.recipes.forecast_data`` to regenerate
``evals/fracast-realgdp.jsonl`` (the recipe ``patchtst-co2`` writes its own).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CO2",
    "GDP",
    "Series",
    "co2_monthly",
    "data_record",
    "origins",
    "realgdp_quarterly",
    "rolling_lines",
    "seasonal_naive",
    "write_fracast_eval",
    "write_lines",
]

REPO = Path(__file__).resolve().parents[2]
FRACAST_EVAL = REPO / "evals" / "fracast-realgdp.jsonl"


class Series:
    """How one series is split and scored: the last ``test`` points are held out, and
    before them ``calibration`` points that training never sees (PatchTST's conformal slice)."""

    def __init__(self, source: str, period: int, horizon: int, test: int, calibration: int, step: int) -> None:
        self.source, self.period, self.horizon = source, period, horizon
        self.test, self.calibration, self.step = test, calibration, step


CO2 = Series("datasets.co2", period=12, horizon=24, test=120, calibration=60, step=6)
"""Monthly Mauna Loa CO2, 1958-03 … 2001-12 (526 months): 10 held-out years, 5 calibration years."""
GDP = Series("datasets.macrodata:realgdp", period=4, horizon=8, test=48, calibration=0, step=2)
"""US real GDP, quarterly 1959 … 2009 (203 quarters): the last 12 years, 2008's recession included."""


def co2_monthly() -> np.ndarray:
    """Weekly co2 with its 59 gaps filled linearly, as monthly means.

    Monthly, not weekly: the season is then exactly 12 steps (52.18 weeks is not a whole
    number, so a weekly seasonal naive drifts), and 4x fewer points train in seconds.
    Rounded to 4 decimals: the weekly readings have one, so nothing real is lost and the
    eval lines stay small.
    """
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    return weekly.resample("MS").mean().round(4).to_numpy(dtype=np.float64)


def realgdp_quarterly() -> np.ndarray:
    import statsmodels.api as sm

    return sm.datasets.macrodata.load_pandas().data["realgdp"].to_numpy(dtype=np.float64)


def data_record(spec: Series, y: np.ndarray) -> dict[str, Any]:
    """The provenance entry of a series as used (after filling and resampling)."""
    version = metadata.version("statsmodels")
    digest = hashlib.sha256(np.ascontiguousarray(y, dtype=np.float64).tobytes()).hexdigest()
    return {"source": f"statsmodels=={version}:{spec.source}", "sha256": digest, "rows": int(len(y))}


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> list[float]:
    """Each step repeats the value one season before it (the last season, again and again)."""
    return [float(history[len(history) - period + h % period]) for h in range(horizon)]


def origins(spec: Series, n: int) -> list[int]:
    """Forecast origins in the held-out part, every ``step``, each with a full horizon after it."""
    return list(range(n - spec.test, n - spec.horizon + 1, spec.step))


def rolling_lines(spec: Series, y: np.ndarray, max_series: int = 4096) -> list[dict[str, Any]]:
    lines = []
    for o in origins(spec, len(y)):
        history = y[max(0, o - max_series) : o]
        lines.append(
            {
                "input": {"series": history.tolist(), "horizon": spec.horizon},
                "expected": y[o : o + spec.horizon].tolist(),
                "baseline": seasonal_naive(history, spec.horizon, spec.period),
            }
        )
    return lines


def write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def write_fracast_eval(path: Path = FRACAST_EVAL) -> Path:
    """The fracast function's gate: 21 origins of US real GDP, 8 quarters ahead each."""
    write_lines(path, rolling_lines(GDP, realgdp_quarterly()))
    return path


if __name__ == "__main__":
    print(write_fracast_eval())
