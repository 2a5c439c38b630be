"""Exact resume: a run killed at step k and resumed from its checkpoint continues the uninterrupted
run's loss curve (to 1e-6 on CPU) with its counters carrying on without a gap.

For lora and head every part runs in a fresh process (``python -m colabhive.training``), so
nothing can survive in memory: the uninterrupted run, the run stopped at k, and its resumption.
The dropout in LoRA and the seeded batch order make a lost RNG or data position show at once.
Forecast (PatchTST: batch-norm statistics, its own window sampler) and tabular (boosting
rounds) are checked with fresh trainer objects in this process, which is cheaper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from colabhive.training import decode_spec
from colabhive.training.example_data import EXAMPLES, dataset_id, write_dataset
from colabhive.training.loop import latest_checkpoint, run_job

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-6


def _cli(*args: str | Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-m", "colabhive.training", *map(str, args), "--threads", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _curve(work: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (work / "metrics.jsonl").read_text().splitlines()]


def _assert_same_curve(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [s["step"] for s in a] == [s["step"] for s in b] == list(range(1, len(a) + 1))
    for x, y in zip(a, b):
        assert abs(x["loss"] - y["loss"]) <= TOL, (x, y)
        if x["grad_norm"] is not None:
            assert abs(x["grad_norm"] - y["grad_norm"]) <= TOL * max(1.0, abs(x["grad_norm"])), (x, y)
        for k in ("lr", "items", "tokens", "samples_seen", "tokens_seen"):
            assert x[k] == y[k], (k, x, y)


def _write_spec(tmp: Path, spec: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    data = tmp / "data.jsonl"
    spec = {**spec, "dataset": {**spec["dataset"], "id": write_dataset(rows, data)}}
    assert dataset_id(data) == spec["dataset"]["id"]
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    return path, data


def _resume_in_fresh_processes(tmp: Path, spec: dict[str, Any], rows: list[dict[str, Any]], k: int) -> None:
    spec_path, data = _write_spec(tmp, spec, rows)
    full = _cli(spec_path, data, tmp / "full")
    stopped = _cli(spec_path, data, tmp / "cut", "--stop-after", k)
    assert stopped == {**stopped, "steps": k, "stopped": "stop_after", "manifest": None}
    assert latest_checkpoint(tmp / "cut").name == f"step-{k:09d}"
    resumed = _cli(spec_path, data, tmp / "cut")
    assert resumed["resumed_from"] == k and full["resumed_from"] is None
    assert resumed["steps"] == full["steps"] == spec["budget"]["max_steps"]
    _assert_same_curve(_curve(tmp / "full"), _curve(tmp / "cut"))
    assert abs(resumed["score"] - full["score"]) <= TOL
    for name in ("full", "cut"):
        assert (tmp / name / "export" / "manifest.toml").is_file()


def test_lora_resumes_exactly_in_a_fresh_process(tmp_path: Path) -> None:
    spec = {"method": "lora", "base": "smollm2-chat", "output": "smollm2-resume@0.1.0", "optimizer": "muon",
            "budget": {"max_steps": 4}, "checkpoint_every": 2, "seed": 3,
            "dataset": {"columns": {"prompt": "question", "response": "answer"}},
            "eval": {"split": 0.1, "metric": "chrf", "threshold": 0.0, "max_rows": 1},
            "hparams": {"batch_size": 2, "seq_len": 40, "r": 4, "dropout": 0.1, "eval_max_tokens": 2,
                        "warmup_steps": 2, "schedule": "cosine"}}
    _resume_in_fresh_processes(tmp_path, spec, EXAMPLES["qa-science"](), k=2)


def test_head_resumes_exactly_in_a_fresh_process(tmp_path: Path) -> None:
    spec = {"method": "head", "base": "minilm-embed", "output": "head-resume@0.1.0",
            "budget": {"max_steps": 6}, "checkpoint_every": 3, "seed": 5,
            "dataset": {"columns": {"label": "sentiment"}},
            "eval": {"split": 0.2, "metric": "accuracy", "threshold": 0.0, "max_rows": 10},
            "hparams": {"batch_size": 16, "max_tokens": 32}}
    # 40 training rows at 16 a batch: the resumed part crosses an epoch boundary
    _resume_in_fresh_processes(tmp_path, spec, EXAMPLES["tweets"]()[:50], k=3)


@pytest.mark.parametrize("method", ["forecast", "tabular"])
def test_forecast_and_tabular_resume_exactly(tmp_path: Path, method: str) -> None:
    import torch

    torch.set_num_threads(1)
    if method == "forecast":
        rows, spec = EXAMPLES["co2"](), {
            "method": "forecast", "dataset": {"id": "0" * 64, "columns": {"value": "co2"}},
            "eval": {"split": 0.2, "metric": "mae_ratio", "threshold": 2.0},
            "hparams": {"batch_size": 8, "d_model": 16, "ffn_dim": 32}}
    else:
        rows, spec = EXAMPLES["wine"](), {
            "method": "tabular", "dataset": {"id": "0" * 64},
            "eval": {"split": 0.25, "metric": "accuracy", "threshold": 0.5}}
    job, hp = decode_spec(json.dumps({**spec, "output": "r@0.1.0", "budget": {"max_steps": 8}, "checkpoint_every": 4}))
    full = run_job(job, hp, rows, tmp_path / "full")
    assert run_job(job, hp, rows, tmp_path / "cut", stop_after=4).stopped == "stop_after"
    resumed = run_job(job, hp, rows, tmp_path / "cut")
    assert resumed.resumed_from == 4 and resumed.steps == full.steps == 8
    _assert_same_curve(_curve(tmp_path / "full"), _curve(tmp_path / "cut"))
    assert resumed.score == pytest.approx(full.score, abs=TOL)
