"""forecast: a small PatchTST trained from scratch on one series, with split-conformal quantiles.

As the ``patchtst-co2`` recipe trains, but on any uploaded series (rows in time order, one
value column). The last ``calibration`` training values are never trained on: the model's
residuals there, per horizon step, become the quantile table the forecasting runner serves.
The held-out split is the *tail* of the series (a random split would leak the future), and it
is scored over rolling origins against the seasonal-naive forecast (``mae_ratio``), through
the served backend code reading the exported directory, so the score is what a caller gets.

A step is one minibatch of random windows; windows are sometimes left-padded and masked as the
runner pads a short input. Every draw comes from the trainer's own seeded generator, which the
checkpoint carries, as it carries the batch-norm running statistics.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from msgspec import Meta

from ..errors import TrainingError
from .base import Method, TorchTrainer, register

__all__ = ["ForecastHParams", "ForecastMethod", "ForecastTrainer", "METHOD"]

LEVELS = [round(0.01 * k, 2) for k in range(1, 100)]


class ForecastHParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    context_length: Annotated[int, Meta(ge=8, le=4096)] = 48
    prediction_length: Annotated[int, Meta(ge=1, le=1024)] = 24
    patch_length: Annotated[int, Meta(ge=1)] = 12
    patch_stride: Annotated[int, Meta(ge=1)] = 6
    d_model: Annotated[int, Meta(ge=4, le=1024)] = 32
    num_attention_heads: Annotated[int, Meta(ge=1)] = 4
    num_hidden_layers: Annotated[int, Meta(ge=1, le=24)] = 2
    ffn_dim: Annotated[int, Meta(ge=4)] = 64
    batch_size: Annotated[int, Meta(ge=1, le=4096)] = 64
    lr: Annotated[float, Meta(gt=0, le=1)] = 1e-2
    weight_decay: Annotated[float, Meta(ge=0)] = 1e-4
    warmup_steps: Annotated[int, Meta(ge=0)] = 0
    schedule: Literal["constant", "cosine"] = "cosine"
    max_grad_norm: Annotated[float, Meta(gt=0)] = 1.0
    pad_probability: Annotated[float, Meta(ge=0, le=1)] = 0.3
    period: Annotated[int, Meta(ge=1, description="Season length: the seasonal-naive baseline's lag.")] = 12
    calibration: Annotated[int, Meta(ge=1, description="Trailing training values kept for the quantiles.")] = 60
    eval_step: Annotated[int, Meta(ge=1, description="Spacing of the held-out forecast origins.")] = 6

    def __post_init__(self) -> None:
        if self.d_model % self.num_attention_heads:
            raise ValueError("`hparams.d_model` must be a multiple of `hparams.num_attention_heads`")
        if self.patch_length > self.context_length:
            raise ValueError("`hparams.patch_length` is longer than `hparams.context_length`")


class ForecastTrainer(TorchTrainer):
    def build(self) -> list[tuple[str, Any]]:
        from transformers import PatchTSTConfig, PatchTSTForPrediction

        hp = self.hparams
        try:
            self.series = np.array([float(r["value"]) for r in self.rows], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"the value column must hold numbers ({exc})", field="dataset.columns.value") from None
        if not np.isfinite(self.series).all():
            raise TrainingError("the series has missing or non-finite values", field="dataset.columns.value")
        self.fit_part = self.series[: len(self.series) - hp.calibration]
        need = hp.context_length + hp.prediction_length + 1
        if len(self.fit_part) < need or hp.calibration < hp.prediction_length:
            raise TrainingError(f"{len(self.series)} training values: need {need} to train plus "
                                f"hparams.calibration {hp.calibration} >= prediction_length", field="hparams.calibration")
        self.starts = np.arange(len(self.fit_part) - hp.context_length - hp.prediction_length + 1)
        config = PatchTSTConfig(
            num_input_channels=1, context_length=hp.context_length, prediction_length=hp.prediction_length,
            patch_length=hp.patch_length, patch_stride=hp.patch_stride, d_model=hp.d_model,
            num_attention_heads=hp.num_attention_heads, num_hidden_layers=hp.num_hidden_layers,
            ffn_dim=hp.ffn_dim, scaling="std", loss="mse",
        )
        self.model = PatchTSTForPrediction(config).to(self.device)
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def buffers(self) -> list[tuple[str, Any]]:
        return list(self.model.named_buffers())

    def train_mode(self) -> None:
        self.model.train()

    def loss(self, batch: list[dict[str, Any]]) -> tuple[Any, int]:
        """``batch`` only sets the count (the cursor's rows are positions in time); the windows
        are drawn at random starts, as the recipe draws them."""
        from ...runners.forecasting import MIN_SERIES, window

        torch, hp, y = self.torch, self.hparams, self.fit_part
        c, h = hp.context_length, hp.prediction_length
        pick = self.rng.choice(self.starts, len(batch))
        past = np.stack([y[i : i + c] for i in pick]).astype(np.float32)
        future = np.stack([y[i + c : i + c + h] for i in pick]).astype(np.float32)
        mask = np.ones_like(past)
        for r in np.flatnonzero(self.rng.random(len(pick)) < hp.pad_probability):
            keep = int(self.rng.integers(min(MIN_SERIES, c - 1), c))
            past[r], mask[r] = window(past[r, -keep:], c)
        out = self.model(
            past_values=torch.from_numpy(past)[..., None].to(self.device),
            past_observed_mask=torch.from_numpy(mask)[..., None].to(self.device),
            future_values=torch.from_numpy(future)[..., None].to(self.device),
        )
        return out.loss, 0

    # ---- calibration, evaluation, export ---------------------------------------------------
    def _residual_table(self) -> np.ndarray:
        """Per-step quantiles of the calibration residuals, in window-spread units: ``[step, level]``."""
        from ...runners.forecasting import window, window_scale

        torch, hp, y = self.torch, self.hparams, self.series
        c, h = hp.context_length, hp.prediction_length
        first = len(self.fit_part)
        cal = range(first, len(y) - h + 1)
        windows = [window(y[:o], c) for o in cal]
        values, mask = np.stack([v for v, _ in windows]), np.stack([m for _, m in windows])
        self.model.eval()
        with torch.inference_mode():
            point = self.model(past_values=torch.from_numpy(values)[..., None].to(self.device),
                               past_observed_mask=torch.from_numpy(mask)[..., None].to(self.device),
                               ).prediction_outputs[..., 0].cpu().numpy()
        truth = np.stack([y[o : o + h] for o in cal])
        resid = (truth - point) / window_scale(values, mask)[:, None]
        return np.quantile(resid, LEVELS, axis=0).T

    def eval_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rolling origins over the held-out tail, with the training series as their history."""
        from ...recipes.forecast_data import Series, rolling_lines

        hp = self.hparams
        held = np.array([float(r["value"]) for r in rows], dtype=np.float64)
        if len(held) < hp.prediction_length:
            raise TrainingError(f"{len(held)} held-out values cannot score a {hp.prediction_length}-step forecast",
                                field="eval.split")
        spec = Series("uploaded", period=hp.period, horizon=hp.prediction_length, test=len(held), calibration=0,
                      step=hp.eval_step)
        return rolling_lines(spec, np.concatenate([self.series, held]))

    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Through the served backend on an export of the model as it is now."""
        from ...runners.forecast_backends import patchtst_from_dir
        from ...runners.forecasting import forecast

        with tempfile.TemporaryDirectory() as tmp:
            self.export(Path(tmp))
            backend = patchtst_from_dir(Path(tmp))
        horizon = max(i["horizon"] for i in inputs)
        point, _ = forecast(backend, [i["series"] for i in inputs], horizon)
        return [{"forecast": point[k, : i["horizon"]].tolist()} for k, i in enumerate(inputs)]

    def export(self, out: Path) -> dict[str, Any]:
        from ...runners.forecast_backends import PATCHTST_META

        hp = self.hparams
        residuals = self._residual_table()
        self.model.save_pretrained(out)
        meta = {
            "model": f"patchtst trained by colabhive.training (seed {self.seed}, step {self.step_count})",
            "context_length": hp.context_length,
            "prediction_length": hp.prediction_length,
            "residual_levels": LEVELS,
            "residual_quantiles": residuals.round(6).tolist(),
        }
        (out / PATCHTST_META).write_text(json.dumps(meta) + "\n")
        return {"source": {"path": "."}, "options": {"backend": "patchtst", "max_horizon": hp.prediction_length}}


@register
class ForecastMethod(Method):
    name = "forecast"
    task = "forecasting"
    HParams = ForecastHParams
    Trainer = ForecastTrainer
    roles = ("value",)
    needs_base = False
    metrics = frozenset({"mae_ratio"})

    @classmethod
    def eval_field(cls, metric: str, trainer: Any = None) -> str:
        return "forecast"

    @classmethod
    def split(cls, rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
        """The last ``fraction`` of the series is held out: a forecast is judged on the future."""
        k = max(1, int(round(len(rows) * fraction)))
        if k >= len(rows):
            raise TrainingError(f"eval.split {fraction} leaves no training values", field="eval.split")
        return rows[:-k], rows[-k:]


METHOD = ForecastMethod
