"""Each encoder family's evaluation in fp32 and in bf16, in process, against its gate.

bf16 is worth offering a manifest only where its evaluation stays above the gate: this runs
every manifest's [eval] dataset through the node's own runner (the same code a node loads)
in both dtypes and scores it with the registry's own metric. The hive's promotion gate then
judges whatever dtype the nodes serve; this is the check before listing bf16 at all.

    python bench/dtype_evals.py [minilm-embed sentiment intent minilm-rerank langid] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["minilm-embed", "sentiment", "intent", "minilm-rerank", "langid"]


def evaluate(name: str, dtype: str) -> tuple[float, float, float, int]:
    from colabhive.families import family
    from colabhive.manifests import read_manifest
    from colabhive.registry.evaluation import load_dataset, score
    from colabhive.wire import Device

    m, problems = read_manifest(ROOT / "manifests" / f"{name}.toml")
    assert m is not None and m.eval is not None, problems
    lines, _ = load_dataset(m.eval_path())
    runner_type = family(m.task).runner
    runner = runner_type(m, Device(kind="cpu", dtypes=["fp32", dtype]), dtype)
    runner.load()
    in_type = runner_type.input_type(1 << 20)
    inputs = [msgspec.json.decode(bytes(ln.input), type=in_type) for ln in lines]
    t0 = time.perf_counter()
    outputs = []
    for i in range(0, len(inputs), 32):
        outputs += [msgspec.to_builtins(o) for o in runner.run(inputs[i:i + 32])]
    seconds = time.perf_counter() - t0
    return score(m.eval.metric, outputs, lines, m.eval.field), m.eval.threshold, seconds, len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=DEFAULT)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print("| manifest | metric | gate | fp32 | bf16 | bf16 passes | n | fp32 s | bf16 s |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    from colabhive.manifests import read_manifest

    for name in args.names:
        m, _ = read_manifest(ROOT / "manifests" / f"{name}.toml")
        f32, gate, s32, n = evaluate(name, "fp32")
        b16, _, s16, _ = evaluate(name, "bf16")
        lower = m is not None and m.eval is not None and m.eval.lower_is_better
        ok = b16 <= gate if lower else b16 >= gate
        metric = m.eval.metric if m is not None and m.eval is not None else "?"
        print(f"| {name} | {metric} | {gate} | {f32:.4f} | {b16:.4f} | {'yes' if ok else 'no'} | {n} | "
              f"{s32:.2f} | {s16:.2f} |")


if __name__ == "__main__":
    main()
