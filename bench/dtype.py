"""MiniLM at c=32 through the hive in fp32 and in bf16, each against its in-process ceiling.

For each dtype: the in-process ceiling is the real EmbeddingRunner (the node's own code)
on batches of 32 copies of the harness's sentence, ``--threads`` torch threads, for
``--seconds``; then a fresh hive (gateway + one node with those threads and max_items 32,
``node.dtypes`` pinned to fp32 or left as the plugin reports) is loaded by wrk -t1 -c32 with
the same body for ``--duration`` after ``--warmup``. Before loading, one answer is checked
against the in-process vector of the same dtype (cosine ≥ 0.999) and its X-Hive-Dtype.

bf16 is measured only where the CPU plugin offers it (AVX-512 BF16 or AMX); elsewhere the
table says fp32 was chosen and quotes the plugin's reason. Usage:

    python bench/dtype.py [--duration 8] [--warmup 2] [--seconds 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
PEERS = Path(os.environ.get("PEERS_DIR", "/work/shared/peers"))
try:  # the peer harness's sentence, so the figures sit beside RESULTS.md's
    sys.path.insert(0, str(PEERS / "servers"))
    from common import SENTENCE  # type: ignore[import-not-found]
except ImportError:
    SENTENCE = "ColabHive routes each request to the best expert on the best node."
finally:
    sys.path.remove(str(PEERS / "servers"))
GUARD_COS = 0.999


def ceiling(dtype: str, seconds: float, threads: int) -> tuple[float, list[float]]:
    """Sentences/s of the node's own runner at batch 32, and the vector of SENTENCE."""
    import torch

    from colabhive.families import family
    from colabhive.manifests import read_manifest
    from colabhive.wire import Device

    torch.set_num_threads(threads)
    m, problems = read_manifest(ROOT / "manifests" / "minilm-embed.toml")
    assert m is not None, problems
    runner_type = family(m.task).runner
    runner = runner_type(m, Device(kind="cpu", dtypes=["fp32", dtype]), dtype)
    runner.load()
    inp = runner_type.input_type(1 << 20)(text=SENTENCE)
    batch = [inp] * 32
    for _ in range(3):
        runner.run(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        runner.run(batch)
        n += 32
    rate = n / (time.perf_counter() - t0)
    return rate, runner.run([inp])[0].embedding


def wrk(url: str, body: str, conc: int, seconds: float) -> dict[str, float]:
    lua = PEERS / "bench" / "post.lua"
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(lua), url],
        env={**os.environ, "WRK_BODY": body}, capture_output=True, text=True, check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    r = json.loads(line[8:])
    errors = sum(v for k, v in r.items() if k.startswith("err_"))
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "errors": errors}


def through_hive(dtypes: list[str] | None, threads: int, warmup: float, duration: float,
                 reference: list[float]) -> dict[str, object]:
    from hivectl import HiveProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-dtype-"))
    node: dict[str, object] = {"torch_threads": threads, "max_items": 32}
    if dtypes:
        node["dtypes"] = dtypes
    h = HiveProcess(tmp, node=node)
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "minilm-embed", wait_for=["minilm-embed"])
        r = h.call("minilm-embed", text=SENTENCE)
        assert r.status_code == 200, r.text
        got = r.json()["embedding"]
        cos = sum(a * b for a, b in zip(got, reference)) / math.sqrt(
            sum(a * a for a in got) * sum(b * b for b in reference))
        assert cos >= GUARD_COS, f"the hive's answer is not the in-process one (cosine {cos:.6f})"
        info = h.get_json("/v1/nodes")["nodes"][0]
        body = json.dumps({"text": SENTENCE})
        url = f"{h.url}/v1/fn/minilm-embed"
        wrk(url, body, 32, warmup)
        figures = wrk(url, body, 32, duration)
        return {**figures, "dtype": r.headers.get("x-hive-dtype", "?"), "cos": cos,
                "device_notes": info["devices"][0].get("dtype_notes", []),
                "note": info.get("dtype_notes", {}).get("minilm-embed@1.0.0", "")}
    finally:
        h.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per in-process ceiling")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk missing: `make bench` installs it (apt-get install wrk)")
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS=str(args.threads))
    import colabhive_cpu

    flags = colabhive_cpu._cpuinfo()[1]
    offered, notes = colabhive_cpu.cpu_dtypes(flags)
    print(f"CPU: {colabhive_cpu.cpu_device().name}; offers {', '.join(offered)}")
    for n in notes:
        print(f"  {n}")
    rows = []
    for label, pin in (("fp32", ["fp32"]), ("bf16", None)):
        if label == "bf16" and "bf16" not in offered:
            print("bf16 not measured: the plugin does not offer it here, so the hive serves fp32 (reason above)")
            break
        rate, ref = ceiling(label, args.seconds, args.threads)
        hive = through_hive(pin, args.threads, args.warmup, args.duration, ref)
        rows.append((label, rate, hive))
    print()
    print(f"| dtype asked | X-Hive-Dtype | in-process ceiling, batch 32 (sent/s) | hive c=32 (req/s) | "
          f"of ceiling | p50 ms | p99 ms | errors | cosine to in-process |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, rate, h in rows:
        print(f"| {label} | {h['dtype']} | {rate:.0f} | {h['rps']:.0f} | {100 * h['rps'] / rate:.0f} % | "
              f"{h['p50_ms']:.1f} | {h['p99_ms']:.1f} | {h['errors']:.0f} | {h['cos']:.6f} |")
    if len(rows) == 2:
        print(f"\nbf16 / fp32 through the hive: {rows[1][2]['rps'] / rows[0][2]['rps']:.2f}x; "
              f"in process: {rows[1][1] / rows[0][1]:.2f}x")
        print(f"node's reason for bf16: {rows[1][2]['note']}")
    print(f"\n(threads {args.threads}, wrk -t1 -c32, warm-up {args.warmup:g} s, measured {args.duration:g} s; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")


if __name__ == "__main__":
    main()
