"""Calibration figures of every node and device of a hive, as a table.

By default it starts a hive of its own (a gateway and one node with the repository's site
profiles, the node hosting only echo so the join calibration runs on an idle box), waits
for the node's join calibration, prints the table and stops the hive. With ``--url`` it
reads a running hive instead; ``--fresh`` first asks every node to calibrate again.

    .venv/bin/python bench/calibrate.py                     # own hive, one node at site local
    .venv/bin/python bench/calibrate.py --site lima --threads 0
    .venv/bin/python bench/calibrate.py --url http://127.0.0.1:8700 --fresh
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from hivectl import HiveProcess  # noqa: E402

COLUMNS = [
    ("node", lambda n, c: n["name"]),
    ("site", lambda n, c: n["site"]),
    ("device", lambda n, c: c["device"]),
    ("thr", lambda n, c: c["threads"]),
    ("fp32 GFLOPS", lambda n, c: f"{c['matmul_fp32_gflops']:.1f}"),
    ("low-p GFLOPS", lambda n, c: f"{c['matmul_lowp_gflops']:.1f} {c['lowp_dtype']}" if c["lowp_dtype"] else "none"),
    ("copy GB/s", lambda n, c: f"{c['memory_gbs']:.1f}"),
    ("MiniLM ms/16", lambda n, c: _num(c["ref_ms_per_batch"], 1)),
    ("tokens/s", lambda n, c: _num(c["ref_tokens_per_s"], 0)),
    ("score", lambda n, c: f"{c['score']:.3f}"),
    ("W", lambda n, c: _num(c["power_w"], 1) + ("*" if c["power_estimated"] else "")),
    ("score/W", lambda n, c: _num(c["score_per_watt"], 4)),
    ("score/$h", lambda n, c: _num(c["score_per_price"], 3)),
    ("took s", lambda n, c: f"{c['duration_s']:.2f}"),
    ("measured", lambda n, c: time.strftime("%H:%M:%S", time.localtime(c["measured_at"]))),
]


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(nodes: list[dict[str, Any]]) -> str:
    rows = [[str(f(n, c)) for _, f in COLUMNS] for n in nodes for c in n["calibration"]]
    heads = [h for h, _ in COLUMNS]
    widths = [max(len(x) for x in col) for col in zip(heads, *rows)]
    line = lambda cells: "  ".join(x.rjust(w) for x, w in zip(cells, widths))  # noqa: E731
    out = [line(heads), line(["-" * w for w in widths]), *map(line, rows)]
    notes = sorted({f"{c['device']}: {note}" for n in nodes for c in n["calibration"] for note in c["notes"]})
    refs = sorted({c["reference"] for n in nodes for c in n["calibration"]})
    out += ["", "* power is the plugin's estimate", *(f"reference (score 1.0): {r}" for r in refs), *notes]
    return "\n".join(out)


def wait_calibrated(url: str, since: float, timeout: float) -> list[dict[str, Any]]:
    """The nodes, once every one has figures for every device measured after ``since``."""
    end = time.monotonic() + timeout
    nodes: list[dict[str, Any]] = []
    while time.monotonic() < end:
        nodes = httpx.get(f"{url}/v1/nodes", timeout=5).json()["nodes"]
        if nodes and all(
            len(n["calibration"]) == len(n["devices"]) and all(c["measured_at"] >= since for c in n["calibration"])
            for n in nodes
        ):
            return nodes
        time.sleep(0.5)
    raise TimeoutError(f"no fresh calibration within {timeout:.0f} s: {nodes}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="read this running hive instead of starting one")
    p.add_argument("--fresh", action="store_true", help="with --url: ask every node to calibrate again first")
    p.add_argument("--site", default="local", help="site of the node this script starts")
    p.add_argument("--threads", type=int, default=1, help="node torch_threads of the node this script starts")
    p.add_argument("--timeout", type=float, default=180)
    args = p.parse_args()
    if args.url:
        since = 0.0
        if args.fresh:
            since = time.time() - 5  # node clocks may lag this one a little
            for n in httpx.get(f"{args.url}/v1/nodes", timeout=5).json()["nodes"]:
                httpx.post(f"{args.url}/v1/nodes/{n['id']}/calibrate", timeout=5).raise_for_status()
        print(table(wait_calibrated(args.url, since, args.timeout)))
        return 0
    h = HiveProcess(Path(tempfile.mkdtemp(prefix="calibrate-")), site_dirs=[ROOT / "nodes"],
             node={"torch_threads": args.threads}, telemetry={"exporter": "none"})
    try:
        h.start_gateway()
        h.start_node("bench-node", "--site", args.site, "--functions", "echo", wait_for=["echo"], calibrate=True)
        print(table(wait_calibrated(h.url, 0.0, args.timeout)))
    finally:
        h.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
