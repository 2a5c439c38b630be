"""AdamW against Muon on this machine: a small LoRA job and a small full-weight model, three seeds.

    python bench/train_optim.py [--lora-steps 12] [--forecast-steps 150] [--seeds 0 1 2] [--threads 2]

Jobs (the training library's own methods, as a node would run them):

- ``lora``: SmolLM2-135M-Instruct + LoRA r=8 on q/v, chatterbot-corpus Q/A (250 pairs), batch 4
  x 64 tokens. Muon acts on every trainable tensor (the LoRA A and B matrices).
- ``forecast``: a PatchTST (d_model 32, 2 layers, all ~18k weights trained from scratch) on
  statsmodels co2. Muon takes the attention and feed-forward matrices; AdamW the patch
  embedding, the head, biases and norms.

Both optimizers get the same learning rate (Muon's update is RMS-matched to AdamW's, see
``colabhive/training/optim.py``) and, per seed, the same initial weights and batch order, so
the comparison is paired. Reported at equal steps and at equal wall time (each run as it stood
when its training clock reached the total of the fastest-finishing run for that job; the clock
counts training steps only, the optimizer's own cost included, not the held-out scoring nor
the first step, which pays one-time costs):
training loss (mean of the last 3 steps) and a held-out score taken every few steps (LoRA: the
loss on 16 held-out pairs; PatchTST: mae_ratio on the held-out tail, as its eval gate scores).
No asserts: figures for a decision, whichever way they fall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

JOBS: dict[str, dict[str, Any]] = {
    "lora": {"method": "lora", "base": "smollm2-chat", "data": "qa-all",
             "columns": {"prompt": "question", "response": "answer"},
             "hparams": {"batch_size": 4, "seq_len": 64, "r": 8, "lr": 5e-4, "dropout": 0.0}},
    "forecast": {"method": "forecast", "base": None, "data": "co2", "columns": {"value": "co2"},
                 "hparams": {"batch_size": 32, "lr": 1e-2, "schedule": "constant"}},
}


def run(job: str, optimizer: str, seed: int, steps: int, every: int) -> dict[str, list[float]]:
    """One run: training loss per step, cumulative training seconds per step, and a held-out
    score every ``every`` steps (its time not counted)."""
    from colabhive.training.example_data import EXAMPLES
    from colabhive.training.loop import resolve_base
    from colabhive.training.methods import get_method

    spec = JOBS[job]
    method = get_method(spec["method"])
    hp = method.HParams(**spec["hparams"])
    base = resolve_base(spec["base"], [REPO / "manifests"]) if spec["base"] else None
    rows, held = method.split(EXAMPLES[spec["data"]](), 0.2, 0)
    trainer = method.Trainer(base, rows, spec["columns"], hp, seed=seed, optimizer=optimizer, total_steps=steps)
    held_rows = [trainer.row(r, i) for i, r in enumerate(held)][:16]

    def score() -> float:
        """lora: mean held-out loss on 16 pairs (eval mode, no dropout); forecast: held-out mae_ratio."""
        if job == "forecast":
            return trainer.evaluate(held, "mae_ratio")
        import torch

        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.loss(held_rows)[0])

    out: dict[str, list[float]] = {"loss": [], "time": [], "eval_step": [0], "eval": [score()]}
    spent = 0.0
    for k in range(1, steps + 1):
        t0 = time.perf_counter()
        out["loss"].append(trainer.step()["loss"])
        if k > 1:  # the first step pays one-time costs (allocations, lazy initialisation): not timed
            spent += time.perf_counter() - t0
        out["time"].append(spent)
        if k % every == 0 or k == steps:
            out["eval_step"].append(k)
            out["eval"].append(score())
    return out


def _tail(losses: list[float], upto: int) -> float:
    window = losses[max(0, upto - 3) : upto]
    return sum(window) / len(window)


def _ms(xs: list[float]) -> str:
    xs = [float(x) for x in xs]
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"


def _at_time(r: dict[str, list[float]], budget: float) -> tuple[int, float, float]:
    """(steps done, train loss, held-out score) of a run when its training clock read ``budget``."""
    done = max(1, sum(1 for t in r["time"] if t <= budget + 1e-9))
    evals = [(k, e) for k, e in zip(r["eval_step"], r["eval"]) if k <= done]
    return done, _tail(r["loss"], done), (evals[-1][1] if evals else float("nan"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lora-steps", type=int, default=12)
    ap.add_argument("--forecast-steps", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", nargs="+", default=list(JOBS))
    ap.add_argument("--json", type=Path, help="also write every curve here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    steps = {"lora": args.lora_steps, "forecast": args.forecast_steps}
    every = {"lora": max(1, args.lora_steps // 4), "forecast": max(1, args.forecast_steps // 15)}
    curves: dict[str, dict[str, list[dict[str, list[float]]]]] = {}
    for job in args.jobs:
        for opt in ("adamw", "muon"):
            for seed in args.seeds:
                r = run(job, opt, seed, steps[job], every[job])
                curves.setdefault(job, {}).setdefault(opt, []).append(r)
                print(f"# {job} {opt} seed {seed}: loss {r['loss'][0]:.4f} -> {r['loss'][-1]:.4f}, held-out "
                      f"{r['eval'][-1]:.4f}, {r['time'][-1]:.1f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "curves": curves}))
    table(curves, steps, args.threads, args.seeds)
    return 0


def table(curves: dict[str, Any], steps: dict[str, int], threads: int, seeds: list[int]) -> None:
    print(f"\nthreads {threads}, seeds {seeds}. train = mean training loss of the last 3 steps; "
          "held-out = lora: loss on 16 held-out pairs, forecast: mae_ratio on the held-out 20 % tail "
          "(lower is better for all); mean ± sd over seeds\n")
    print("| job | optimizer | s/step | steps | train at equal steps | held-out at equal steps "
          "| equal time: s (steps) | train at equal time | held-out at equal time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for job, by_opt in curves.items():
        budget = min(r["time"][-1] for runs in by_opt.values() for r in runs)  # every run got this far
        for opt, runs in by_opt.items():
            at = [_at_time(r, budget) for r in runs]
            print(f"| {job} | {opt} | {statistics.mean(r['time'][-1] / max(1, len(r['time']) - 1) for r in runs):.3f} "
                  f"| {steps[job]} | {_ms([_tail(r['loss'], len(r['loss'])) for r in runs])} "
                  f"| {_ms([r['eval'][-1] for r in runs])} "
                  f"| {budget:.1f} ({min(a[0] for a in at)}-{max(a[0] for a in at)}) "
                  f"| {_ms([a[1] for a in at])} | {_ms([a[2] for a in at])} |")


if __name__ == "__main__":
    raise SystemExit(main())
