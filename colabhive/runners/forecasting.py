"""forecasting: the next ``horizon`` values of one univariate series, with quantiles.

Two backends, picked by the manifest's ``options.backend``:

- ``fracast``: the pretrained 85k-parameter Fracast-0 that ships inside the ``fracast``
  package. It gives quantiles 0.1…0.9; the point forecast is its median.
- ``patchtst``: a small PatchTST trained here by a recipe (``patchtst-co2``). Its point
  forecast is the model's output; its quantiles are split-conformal: the point plus the
  empirical quantile, per horizon step, of residuals the model made on a calibration slice
  it never trained on (stored beside the weights in ``forecast.json``).

Either way a backend hands back a table of quantiles at its own levels, and
:func:`at_levels` reads any requested level off it by interpolating in normal-score space,
so the caller may ask for any levels in (0, 1) and always gets them in increasing order
at every step (never crossed).

Manifest options: ``backend`` (``fracast`` or ``patchtst``), ``max_horizon`` (default 48;
larger is a 422 naming ``horizon``, and loading fails if the model cannot reach it) and,
for fracast, ``weights`` (``fp32`` or the int8 ``w8`` file).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..errors import InvalidInput
from .base import Runner

__all__ = [
    "ForecastInput",
    "ForecastOutput",
    "ForecastingRunner",
    "MAX_SERIES",
    "MIN_SERIES",
    "at_levels",
    "forecast",
    "level_key",
    "standardise",
    "window",
]

MIN_SERIES = 16
MAX_SERIES = 4096
MAX_HORIZON = 1024
"""A schema-level ceiling; each manifest's ``options.max_horizon`` is the real limit."""
VALUE_LIMIT = 1e30
"""Far beyond any real measurement; keeps every mean and spread finite in float64."""
DEFAULT_LEVELS = (0.1, 0.5, 0.9)

Value = Annotated[float, Meta(ge=-VALUE_LIMIT, le=VALUE_LIMIT)]
Level = Annotated[float, Meta(gt=0.0, lt=1.0)]


class ForecastInput(msgspec.Struct, forbid_unknown_fields=True):
    series: Annotated[
        list[Value],
        Meta(
            min_length=MIN_SERIES,
            max_length=MAX_SERIES,
            description=f"Observed values, oldest first, evenly spaced; {MIN_SERIES} to {MAX_SERIES}.",
        ),
    ]
    horizon: Annotated[int, Meta(ge=1, le=MAX_HORIZON, description="Steps to forecast (see the manifest).")]
    quantiles: Annotated[list[Level], Meta(max_length=99, description="Levels in (0, 1).")] = msgspec.field(
        default_factory=lambda: list(DEFAULT_LEVELS)
    )


class ForecastOutput(msgspec.Struct):
    forecast: list[float]
    """The point forecast, ``horizon`` values."""
    quantiles: dict[str, list[float]]
    """Requested level (as :func:`level_key` spells it) → ``horizon`` values, lowest level first."""
    model: str


def level_key(level: float) -> str:
    """``0.1`` → ``"0.1"``: the shortest decimal that reads back as the same float, as JSON writes it."""
    return repr(float(level))


def at_levels(levels: Any, table: Any, wanted: Any) -> Any:
    """Quantiles at ``wanted`` levels from a ``(..., len(levels))`` table of known ones.

    Piecewise-linear in normal scores (Φ⁻¹ of the level), so a Gaussian table is
    reproduced exactly; beyond the table's outer levels it extends with the slope between
    them, as a normal tail would. The table is sorted along its last axis first (a model's
    quantiles may cross), which makes the result monotone in the level.
    """
    import numpy as np

    inv = NormalDist().inv_cdf
    z = np.array([inv(float(p)) for p in levels])
    zw = np.array([inv(float(p)) for p in wanted])
    q = np.sort(np.asarray(table, dtype=np.float64), axis=-1)
    idx = np.clip(np.searchsorted(z, zw) - 1, 0, len(z) - 2)
    inside = (zw >= z[0]) & (zw <= z[-1])
    lo, hi = np.where(inside, idx, 0), np.where(inside, idx + 1, len(z) - 1)
    t = (zw - z[lo]) / (z[hi] - z[lo])  # outside the table: extrapolate along the outer slope
    return q[..., lo] + t * (q[..., hi] - q[..., lo])


def window(series: Any, length: int) -> tuple[Any, Any]:
    """The last ``length`` values and an observed mask; a shorter series is left-padded.

    Padding repeats the first value (mask 0) so the model's scaler ignores it and the
    patches see no artificial jump; the patchtst recipe trains on windows padded the same
    way, so short inputs are not out of distribution.
    """
    import numpy as np

    y = np.asarray(series, dtype=np.float32)[-length:]
    values = np.full(length, y[0], dtype=np.float32)
    mask = np.zeros(length, dtype=np.float32)
    values[length - len(y) :] = y
    mask[length - len(y) :] = 1.0
    return values, mask


def window_scale(values: Any, mask: Any) -> Any:
    """Spread of each window's observed values: residuals are stored in these units so the
    conformal band scales with the series it is applied to (PatchTST's own scaler is the same)."""
    import numpy as np

    n = np.maximum(mask.sum(-1), 1.0)
    mean = (values * mask).sum(-1) / n
    var = (((values - mean[..., None]) * mask) ** 2).sum(-1) / n
    return np.maximum(np.sqrt(var), 1e-5)


def standardise(series: list[Any]) -> tuple[Any, Any]:
    """Each series' mean and standard deviation (1 for a constant one), in float64.

    Both models compute in float32 and are shift- and scale-equivariant, so the runner
    hands them ``(y - mean) / std`` and maps the answer back: a series around 1e15 keeps
    its small changes, one near 1e29 does not overflow, and one varying by 1e-20 is not
    flattened by the models' own minimum scale.
    """
    import numpy as np

    loc = np.array([y.mean() for y in series])
    std = np.array([y.std() for y in series])
    return loc, np.where((std > 0) & np.isfinite(std), std, 1.0)


def forecast(backend: Any, series: list[Any], horizon: int) -> tuple[Any, Any]:
    """``(point[B, horizon], table[B, horizon, levels])`` in the series' own units.

    What the runner serves and what the patchtst recipe scores, so the two cannot differ.
    """
    import numpy as np

    ys = [np.asarray(y, dtype=np.float64) for y in series]
    loc, scale = standardise(ys)
    point, table = backend.predict([(y - m) / d for y, m, d in zip(ys, loc, scale)], horizon)
    point = point * scale[:, None] + loc[:, None]
    table = table * scale[:, None, None] + loc[:, None, None]
    if not (np.isfinite(point).all() and np.isfinite(table).all()):
        raise RuntimeError("the model produced non-finite forecasts")
    return point, table


class ForecastingRunner(Runner):
    Output = ForecastOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return ForecastInput

    @property
    def max_horizon(self) -> int:
        return int(self.manifest.options.get("max_horizon", 48))

    def check(self, inp: Any) -> None:
        if inp.horizon > self.max_horizon:
            raise InvalidInput(
                f"horizon {inp.horizon} is more than this function forecasts (at most {self.max_horizon})",
                field="horizon",
            )
        if len(set(inp.quantiles)) != len(inp.quantiles):
            raise InvalidInput("quantiles must not repeat a level", field="quantiles")

    def load(self) -> None:
        from .forecast_backends import load_backend

        self.backend = load_backend(self.manifest, self.device, self.dtype)
        if self.max_horizon > self.backend.max_horizon:
            raise ValueError(
                f"options.max_horizon = {self.max_horizon} but the {self.backend.name} model "
                f"forecasts at most {self.backend.max_horizon} steps"
            )

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        import numpy as np

        horizon = max(i.horizon for i in inputs)  # one pass; each input takes its own prefix
        point, table = forecast(self.backend, [i.series for i in inputs], horizon)
        out: list[msgspec.Struct] = []
        for k, inp in enumerate(inputs):
            h = inp.horizon
            wanted = sorted(inp.quantiles)
            qs = at_levels(self.backend.levels, table[k, :h], wanted) if wanted else np.zeros((h, 0))
            out.append(
                ForecastOutput(
                    forecast=point[k, :h].astype(float).tolist(),
                    quantiles={level_key(p): qs[:, j].tolist() for j, p in enumerate(wanted)},
                    model=f"{self.manifest.ref} ({self.backend.name})",
                )
            )
        return out
