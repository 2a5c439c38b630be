"""patchtst-co2: a small PatchTST trained on monthly Mauna Loa CO2, with conformal quantiles.

Split, oldest to newest: training (1958–1986), calibration (5 years: the model's
residuals there, per horizon step, become its quantiles), test (the last 10 years: the
metrics and ``eval.jsonl``). Training windows are sometimes left-padded and masked as the
runner pads a short input, so a caller's 16-value series is not out of distribution.
Metrics are measured through the served code path (the runner's backend reading the saved
directory), so what provenance records is what a caller gets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..runners.forecast_backends import PATCHTST_META, patchtst_from_dir
from ..runners.forecasting import MIN_SERIES, at_levels, forecast, window, window_scale
from .forecast_data import CO2, co2_monthly, data_record, origins, rolling_lines, write_lines
from .provenance import write_provenance

NAME = "patchtst-co2"

PARAMS: dict[str, Any] = {
    "context_length": 48,
    "prediction_length": CO2.horizon,
    "patch_length": 12,
    "patch_stride": 6,
    "d_model": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "ffn_dim": 64,
    "steps": 400,
    "batch": 64,
    "lr": 1e-2,
    "pad_probability": 0.3,
}
LEVELS = [round(0.01 * k, 2) for k in range(1, 100)]
"""Residual quantiles stored per step; the runner interpolates between them."""


@contextmanager
def _one_thread() -> Iterator[None]:
    """A model this small runs 5-10x slower on 2 threads than on 1 (sync costs dwarf the
    work, worse on a shared machine), so build with one and restore the caller's setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(train: np.ndarray, seed: int) -> Any:
    import torch
    from transformers import PatchTSTConfig, PatchTSTForPrediction

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    c, h = PARAMS["context_length"], PARAMS["prediction_length"]
    config = PatchTSTConfig(
        num_input_channels=1,
        context_length=c,
        prediction_length=h,
        patch_length=PARAMS["patch_length"],
        patch_stride=PARAMS["patch_stride"],
        d_model=PARAMS["d_model"],
        num_attention_heads=PARAMS["num_attention_heads"],
        num_hidden_layers=PARAMS["num_hidden_layers"],
        ffn_dim=PARAMS["ffn_dim"],
        scaling="std",
        loss="mse",
    )
    model = PatchTSTForPrediction(config)
    opt = torch.optim.AdamW(model.parameters(), lr=PARAMS["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=PARAMS["lr"], total_steps=PARAMS["steps"])
    starts = np.arange(len(train) - c - h + 1)
    model.train()
    for _ in range(PARAMS["steps"]):
        pick = rng.choice(starts, PARAMS["batch"])
        past = np.stack([train[i : i + c] for i in pick]).astype(np.float32)
        future = np.stack([train[i + c : i + c + h] for i in pick]).astype(np.float32)
        mask = np.ones_like(past)
        for r in np.flatnonzero(rng.random(len(pick)) < PARAMS["pad_probability"]):
            keep = int(rng.integers(MIN_SERIES, c))  # as window() pads a series of `keep` values
            past[r], mask[r] = window(past[r, -keep:], c)
        loss = model(
            past_values=torch.from_numpy(past)[..., None],
            past_observed_mask=torch.from_numpy(mask)[..., None],
            future_values=torch.from_numpy(future)[..., None],
        ).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def _calibrate(model: Any, y: np.ndarray, first: int, last: int) -> np.ndarray:
    """Per-step quantiles of residuals (in window-spread units) for origins whose whole
    horizon lies in ``y[first:last]``: ``[step, level]``."""
    import torch

    c, h = PARAMS["context_length"], PARAMS["prediction_length"]
    cal = range(first, last - h + 1)
    windows = [window(y[:o], c) for o in cal]
    values, mask = np.stack([v for v, _ in windows]), np.stack([m for _, m in windows])
    with torch.inference_mode():
        point = model(
            past_values=torch.from_numpy(values)[..., None], past_observed_mask=torch.from_numpy(mask)[..., None]
        ).prediction_outputs[..., 0].numpy()
    truth = np.stack([y[o : o + h] for o in cal])
    resid = (truth - point) / window_scale(values, mask)[:, None]
    return np.quantile(resid, LEVELS, axis=0).T


def _score(out_dir: Path, y: np.ndarray) -> dict[str, float]:
    """Test-period metrics through the served backend: MAE, seasonal-naive MAE, their ratio,
    and how often the truth fell inside the 10–90 % band (0.8 if calibrated)."""
    backend = patchtst_from_dir(out_dir)
    lines = rolling_lines(CO2, y)
    point, table = forecast(backend, [ln["input"]["series"] for ln in lines], CO2.horizon)
    truth = np.array([ln["expected"] for ln in lines])
    naive = np.array([ln["baseline"] for ln in lines])
    band = at_levels(backend.levels, table, [0.1, 0.9])
    inside = (truth >= band[..., 0]) & (truth <= band[..., 1])
    mae, naive_mae = float(np.abs(point - truth).mean()), float(np.abs(naive - truth).mean())
    return {
        "mae": round(mae, 4),
        "seasonal_naive_mae": round(naive_mae, 4),
        "mae_ratio": round(mae / naive_mae, 4),
        "coverage_10_90": round(float(inside.mean()), 4),
        "test_origins": len(lines),
    }


def build(out_dir: Path, seed: int) -> dict[str, float]:
    y = co2_monthly()
    n = len(y)
    cal_start, test_start = n - CO2.test - CO2.calibration, n - CO2.test
    with _one_thread():
        model = _train(y[:cal_start], seed)
        residuals = _calibrate(model, y, cal_start, test_start)
        model.save_pretrained(out_dir)  # config.json + model.safetensors
    meta = {
        "model": f"patchtst-co2 seed {seed}",
        "context_length": PARAMS["context_length"],
        "prediction_length": PARAMS["prediction_length"],
        "scaling": "per window: (x - mean) / std of its observed values (PatchTST 'std' scaler)",
        "residual_units": "truth minus point forecast, over the std of the input window",
        "calibration": {"first": cal_start, "end": test_start},
        "residual_levels": LEVELS,
        "residual_quantiles": residuals.round(6).tolist(),
    }
    (out_dir / PATCHTST_META).write_text(json.dumps(meta) + "\n")
    write_lines(out_dir / "eval.jsonl", rolling_lines(CO2, y))
    with _one_thread():
        metrics = _score(out_dir, y)
    assert len(origins(CO2, n)) == metrics["test_origins"]
    write_provenance(
        out_dir,
        recipe=NAME,
        data=[data_record(CO2, y)],
        seed=seed,
        metrics=metrics,
        params={**PARAMS, "split": {"train_end": cal_start, "calibration_end": test_start, "rows": n}},
        libraries=["transformers", "statsmodels", "numpy"],
    )
    return metrics
