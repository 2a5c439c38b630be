"""``python -m colabhive.training SPEC DATA WORK_DIR [--eval-data FILE] [--manifests DIR] [--stop-after N]
[--threads N]``: run (or resume) one job on this machine and print its result as JSON.

SPEC is the job spec (TOML or JSON); DATA and ``--eval-data`` are dataset files (JSONL or CSV)
as uploaded. What a node will do with a leased job, runnable by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InvalidSpec, TrainingError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m colabhive.training")
    ap.add_argument("spec", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("work_dir", type=Path)
    ap.add_argument("--eval-data", type=Path)
    ap.add_argument("--manifests", type=Path, action="append")
    ap.add_argument("--stop-after", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from .example_data import read_dataset
    from .loop import resolve_base, run_job
    from .methods import get_method
    from .spec import decode_spec

    try:
        spec, hparams = decode_spec(args.spec.read_bytes())
        repo = Path(__file__).resolve().parents[2]
        tasks = get_method(spec.method).base_tasks
        base = resolve_base(spec.base, args.manifests or [repo / "manifests"], tasks) if spec.base else None
        eval_rows = read_dataset(args.eval_data) if args.eval_data else None
        result = run_job(spec, hparams, read_dataset(args.data), args.work_dir, base=base, eval_rows=eval_rows,
                         device=args.device, stop_after=args.stop_after)
    except (InvalidSpec, TrainingError) as exc:
        print(json.dumps({"error": exc.to_body()["error"]}), file=sys.stderr)
        return 2
    print(json.dumps({"steps": result.steps, "stopped": result.stopped, "resumed_from": result.resumed_from,
                      "score": result.score, "passed": result.passed,
                      "manifest": str(result.manifest) if result.manifest else None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
