"""Per-function figures for the whole catalog: load time, latency at c=1, throughput at c=8,
and the node's peak memory.

Each function gets its own hive (one gateway, one node hosting only that function), so
the node's peak RSS (VmHWM, read from /proc) is what hosting that one function costs, and
its load time is the node's own "loaded ... in N s" line. Inputs are the function's own
evaluation inputs (``[eval].dataset``), cycled, so the figures describe realistic calls.
Run on a quiet machine: the gateway, the node and the load generator share its cores.

    .venv/bin/python bench/catalog.py                  # every manifest in manifests/
    .venv/bin/python bench/catalog.py sentiment fracast --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from hivectl import HiveProcess  # noqa: E402

from colabhive.manifests import Manifest, load_manifests  # noqa: E402

FALLBACK_INPUTS = {"echo": [{"text": "hello hive"}]}
LOADED = re.compile(r"loaded (?P<ref>\S+) on (?P<dev>\S+) \((?P<dtype>\w+)\) in (?P<s>[0-9.]+) s")


def inputs_of(m: Manifest) -> list[bytes]:
    if m.eval is not None:
        lines = [json.loads(ln) for ln in m.eval_path().read_text().splitlines() if ln.strip()]
        return [json.dumps(ln["input"]).encode() for ln in lines]
    return [json.dumps(i).encode() for i in FALLBACK_INPUTS.get(m.task, [{"text": "hello hive"}])]


def peak_rss_mb(pid: int) -> float:
    """The node's peak resident memory; its children (none today) are not counted."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def closed_loop(url: str, fn: str, bodies: list[bytes], conc: int, seconds: float) -> dict[str, Any]:
    """``conc`` callers, each sending its next call when the last one answers."""
    lat: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=conc)) as http:

        async def caller(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = await http.post(f"/v1/fn/{fn}", content=bodies[i % len(bodies)],
                                    headers={"content-type": "application/json"})
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors += 1
                i += conc

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(conc)))
        wall = time.perf_counter() - t0
    return {"n": len(lat), "errors": errors, "rps": len(lat) / wall,
            "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
            "p99_ms": (sorted(lat)[int(len(lat) * 0.99) - 1] * 1000) if len(lat) >= 100 else float("nan")}


def bench_one(m: Manifest, seconds: float, tmp: Path) -> dict[str, Any]:
    h = HiveProcess(tmp / m.name, limits={"max_text_chars": 20000, "max_body_bytes": 1 << 20, "node_timeout_s": 10.0})
    try:
        h.start_gateway()
        t0 = time.perf_counter()
        h.start_node("node", "--functions", m.ref, wait_for=[m.ref])
        ready_s = time.perf_counter() - t0
        found = LOADED.search(h.log("node"))
        bodies = inputs_of(m)
        for b in bodies[:3]:  # warm-up: first calls pay for lazy initialisation
            r = h.http.post(f"/v1/fn/{m.ref}", content=b, headers={"content-type": "application/json"}, timeout=120)
            assert r.status_code == 200, (m.ref, r.status_code, r.text[:300])
        c1 = asyncio.run(closed_loop(h.url, m.ref, bodies, 1, seconds))
        c8 = asyncio.run(closed_loop(h.url, m.ref, bodies, 8, seconds))
        node = h.nodes["node"]
        return {
            "ref": m.ref, "task": m.task,
            "load_s": float(found["s"]) if found else float("nan"), "ready_s": ready_s,
            "device": found["dev"] if found else "?", "dtype": found["dtype"] if found else "?",
            "p50_c1_ms": c1["p50_ms"], "rps_c1": c1["rps"], "rps_c8": c8["rps"], "p50_c8_ms": c8["p50_ms"],
            "errors": c1["errors"] + c8["errors"], "peak_rss_mb": peak_rss_mb(node.pid),
        }
    finally:
        h.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="functions (default: every manifest)")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per concurrency")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    manifests = [m for m in load_manifests([ROOT / "manifests"]) if not args.names or m.name in args.names]
    rows = []
    with tempfile.TemporaryDirectory(prefix="colabhive-bench-") as tmp:
        for m in manifests:
            print(f"# {m.ref} ...", file=sys.stderr, flush=True)
            rows.append(bench_one(m, args.seconds, Path(tmp)))
    print(f"| function | task | load s | p50 c=1 ms | req/s c=1 | req/s c=8 | p50 c=8 ms | node peak RSS MB | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['ref']} | {r['task']} | {r['load_s']:.2f} | {r['p50_c1_ms']:.1f} | {r['rps_c1']:.1f} | "
              f"{r['rps_c8']:.1f} | {r['p50_c8_ms']:.1f} | {r['peak_rss_mb']:.0f} | {r['errors']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
