"""A routing run across two sites: where `fast`, `green` and `cheap` calls go, and what each costs.

Two nodes host minilm-embed, each in its own network namespace (loopback if namespaces
are unavailable): "near" (same machine, a dirty and dear grid) and "far" (60 ms each way
through a delay proxy, a clean and cheap grid). For each preference it sends closed-loop
calls and prints where they ran, their latency, and the energy and gCO₂ the nodes
measured for them (the x-hive-energy-j / x-hive-carbon-g headers), so the reason each
preference picks its site is in the figures.

    .venv/bin/python bench/routing.py [--calls 60]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from delayproxy import DelayProxy  # noqa: E402
from hivectl import MANIFESTS, HiveProcess  # noqa: E402

import netns  # noqa: E402

SITES = {
    "near": 'name = "near"\nregion = "same rack"\ncarbon_g_per_kwh = 700\nprice_per_gpu_hour = 0.9\n',
    "far": 'name = "far"\nregion = "another city"\ncarbon_g_per_kwh = 40\nprice_per_gpu_hour = 0.3\n',
}
TEXT = "Routing decides where each call runs, by latency, carbon and price."


def run(calls: int, delay_ms: float) -> None:
    with tempfile.TemporaryDirectory(prefix="colabhive-routing-") as tmp:
        root = Path(tmp)
        (mdir := root / "manifests").mkdir()
        text = (MANIFESTS / "minilm-embed.toml").read_text()  # its eval dataset stays where it is
        (mdir / "minilm-embed.toml").write_text(text.replace('"../evals/', f'"{MANIFESTS.parent}/evals/'))
        (sdir := root / "sites").mkdir()
        for name, text in SITES.items():
            (sdir / f"{name}.toml").write_text(text)
        use_ns, why = netns.available()
        h = HiveProcess(root / "hive", [mdir], site_dirs=[sdir], gateway={"host": "0.0.0.0"})
        net_cm = netns.sites(["near", "far"]) if use_ns else contextlib.nullcontext(None)
        with net_cm as net:
            try:
                h.start_gateway()
                near_ip = net["near"].host_ip if net else "127.0.0.1"
                far_ip = net["far"].host_ip if net else "127.0.0.1"
                with DelayProxy(far_ip, "127.0.0.1", h.port, delay_ms) as link:
                    h.start_node("node-near", "--site", "near", "--gateway", f"http://{near_ip}:{h.port}",
                                 netns=net["near"].ns if net else None)
                    h.start_node("node-far", "--site", "far", "--gateway", f"http://{far_ip}:{link.port}",
                                 netns=net["far"].ns if net else None)
                    for n in ("node-near", "node-far"):
                        h.wait_ready(["minilm-embed"], node=n)
                    h.wait_for(lambda: all(n.get("rtt_ms") for n in h.get_json("/v1/nodes")["nodes"]), 20, "RTTs")
                    nodes = {n["id"]: n for n in h.get_json("/v1/nodes")["nodes"]}
                    print(f"# sites: {'network namespaces + veth' if net else 'loopback (' + why + ')'}; "
                          f"far link +{delay_ms:.0f} ms each way")
                    for n in nodes.values():
                        print(f"#   {n['name']}: site {n['site']}, {n['site_profile']['carbon_g_per_kwh']} gCO2/kWh, "
                              f"{n['site_profile']['price_per_gpu_hour']}/h, rtt {n['rtt_ms']:.1f} ms")
                    for pref in ("green", "fast"):  # warm both nodes' measurements
                        for _ in range(5):
                            h.http.post("/v1/fn/minilm-embed", json={"text": TEXT}, headers={"x-hive-prefer": pref})
                    print("| prefer | calls at near | calls at far | p50 ms | p95 ms | energy J/call | gCO2/call |")
                    print("|---|---|---|---|---|---|---|")
                    for pref in ("fast", "green", "cheap", "balanced"):
                        where: Counter[str] = Counter()
                        lat, energy, carbon = [], [], []
                        for _ in range(calls):
                            t0 = time.perf_counter()
                            r = h.http.post("/v1/fn/minilm-embed", json={"text": TEXT}, headers={"x-hive-prefer": pref})
                            lat.append((time.perf_counter() - t0) * 1000)
                            r.raise_for_status()
                            where[nodes[r.headers["x-hive-node"]]["site"]] += 1
                            energy.append(float(r.headers.get("x-hive-energy-j", "nan")))
                            carbon.append(float(r.headers.get("x-hive-carbon-g", "nan")))
                        lat.sort()
                        print(f"| {pref} | {where['near']} | {where['far']} | {statistics.median(lat):.1f} | "
                              f"{lat[int(len(lat) * 0.95) - 1]:.1f} | {statistics.mean(energy):.3f} | "
                              f"{statistics.mean(carbon):.2e} |")
            finally:
                h.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--delay-ms", type=float, default=60.0)
    args = ap.parse_args()
    run(args.calls, args.delay_ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
