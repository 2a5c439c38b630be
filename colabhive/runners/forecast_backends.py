"""The models behind the ``forecasting`` task: each turns series into a point forecast and a
quantile table at its own levels (the runner reads requested levels off that table).

Imported only by ``ForecastingRunner.load``: this module may import torch at the top of a
function, never at import time of :mod:`colabhive.runners`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from ..manifests import Manifest, Source
from ..plugins import get_plugin_manager, place_model
from ..wire import Device
from .base import source_path
from .forecasting import window, window_scale

__all__ = ["PATCHTST_META", "Backend", "FracastBackend", "PatchTSTBackend", "load_backend", "patchtst_from_dir"]

PATCHTST_META = "forecast.json"
"""Beside the PatchTST weights: window length, the residual scaling and the conformal table."""


class Backend(Protocol):
    name: str
    max_horizon: int
    levels: list[float]

    def predict(self, series: list[Any], horizon: int) -> tuple[Any, Any]:
        """``(point[B, horizon], table[B, horizon, len(levels)])`` as numpy arrays, for
        series the runner has already standardised (float64 arrays)."""
        ...


class FracastBackend:
    """Fracast-0 from the weights inside the installed package, never from the hub.

    Series of different lengths go through in one pass: the shorter ones are left-padded
    with NaN, which Fracast treats as unobserved exactly as it treats the empty part of its
    2048-step context, so a batched answer equals the one-by-one answer.
    """

    def __init__(self, manifest: Manifest, device: Device) -> None:
        from fracast import FracastModel

        weights_dir = source_path(manifest) / "weights"
        if not (weights_dir / "config.json").is_file():
            # FracastModel would take a missing directory for a hub repo id and download it
            raise FileNotFoundError(f"no Fracast weights in {weights_dir}")
        target = get_plugin_manager().hook.hive_torch_device(device=device) or "cpu"
        fmt = str(manifest.options.get("weights", "fp32"))
        self.model = FracastModel.from_pretrained(str(weights_dir), weights=fmt, device=target)
        self.name = f"fracast-0 {fmt}"
        self.levels = list(self.model.quantiles)
        self.median = min(range(len(self.levels)), key=lambda j: abs(self.levels[j] - 0.5))
        self.context = self.model.context_length
        self.max_horizon = 1024  # it rolls forward 48 steps at a time on its own median

    def predict(self, series: list[Any], horizon: int) -> tuple[Any, Any]:
        import numpy as np

        width = min(max(len(s) for s in series), self.context)
        rows = np.full((len(series), width), np.nan, dtype=np.float32)
        for k, s in enumerate(series):
            tail = s[-width:]
            rows[k, width - len(tail) :] = tail
        # sorted: its quantiles can cross, and the point must be the median the caller sees
        table = np.sort(self.model.forecast_batch(rows, horizon=horizon).astype(np.float64), axis=-1)
        return table[:, :, self.median], table


class PatchTSTBackend:
    """A PatchTST saved by ``save_pretrained`` plus the conformal residual table in
    :data:`PATCHTST_META`, in units of each input window's own spread."""

    def __init__(self, manifest: Manifest, device: Device, dtype: str) -> None:
        import numpy as np
        import torch
        from transformers import PatchTSTForPrediction

        path = source_path(manifest)
        meta = json.loads((path / PATCHTST_META).read_text())
        model = PatchTSTForPrediction.from_pretrained(path).eval()
        self.model = place_model(model, device, dtype)
        self.torch = torch
        self.torch_device = get_plugin_manager().hook.hive_torch_device(device=device)
        self.context = int(meta["context_length"])
        self.max_horizon = int(meta["prediction_length"])
        self.levels = [float(p) for p in meta["residual_levels"]]
        self.residuals = np.asarray(meta["residual_quantiles"], dtype=np.float64)  # [step, level]
        self.name = str(meta.get("model", "patchtst"))

    def predict(self, series: list[Any], horizon: int) -> tuple[Any, Any]:
        point, scale = self.point(series)
        point = point[:, :horizon]
        table = point[:, :, None] + scale[:, None, None] * self.residuals[None, :horizon, :]
        return point, table

    def point(self, series: list[Any]) -> tuple[Any, Any]:
        """Point forecasts over the model's full horizon, and each window's spread.

        Windows come from :func:`window` and spreads from :func:`window_scale`, as in the
        recipe's calibration, so the stored residuals are in the units applied here.
        """
        import numpy as np

        torch = self.torch
        windows = [window(s, self.context) for s in series]
        values = np.stack([v for v, _ in windows])
        mask = np.stack([m for _, m in windows])
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            out = self.model(
                past_values=torch.from_numpy(values)[..., None].to(self.torch_device, dtype),
                past_observed_mask=torch.from_numpy(mask)[..., None].to(self.torch_device, dtype),
            ).prediction_outputs
        return out[..., 0].float().cpu().numpy().astype(np.float64), window_scale(values, mask).astype(np.float64)


def load_backend(manifest: Manifest, device: Device, dtype: str) -> Backend:
    kind = str(manifest.options.get("backend", "fracast"))
    if kind == "fracast":
        return FracastBackend(manifest, device)
    if kind == "patchtst":
        return PatchTSTBackend(manifest, device, dtype)
    raise ValueError(f"options.backend = {kind!r}; known: 'fracast', 'patchtst'")


def patchtst_from_dir(path: Path) -> PatchTSTBackend:
    """The served backend for a model directory, on CPU: what the recipe scores and calibrates."""
    m = Manifest(name="build", task="forecasting", source=Source(path=str(path.resolve())))
    return PatchTSTBackend(m, Device(kind="cpu", name="cpu"), "fp32")
