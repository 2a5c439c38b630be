"""Does each shipped ensemble beat its members, and what does combining cost?

For every ensemble manifest, its own evaluation dataset is run through each member and through
the ensemble, all over HTTP on one hive, and scored with the registry's metric code, so the
members and the ensemble are judged on the same lines. Members are evaluated on the hive first
(their own declared datasets), so a ``score_weighted`` ensemble has its real weights. Latency:
p50 at c=1 of one call to the ensemble against one call to its slowest member.

    .venv/bin/python bench/ensembles.py            # starts its own gateway and node, then stops them
    .venv/bin/python bench/ensembles.py --url http://127.0.0.1:8700
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from colabhive.manifests import Manifest, load_manifests  # noqa: E402
from colabhive.registry.evaluation import load_dataset, run_evaluation  # noqa: E402

LATENCY_CALLS = 30


@contextlib.contextmanager
def own_hive(functions: list[str]) -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from hivectl import HiveProcess  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="colabhive-ensembles-") as tmp:
        h = HiveProcess(Path(tmp))
        try:
            h.start_gateway()
            h.start_node("node-a", "--functions", ",".join(functions), wait_for=functions)
            yield h.url
        finally:
            h.stop()


async def score_on(client: httpx.AsyncClient, fn: str, ens: Manifest) -> float:
    assert ens.eval is not None

    async def run_one(body: bytes) -> bytes:
        r = await client.post(f"/v1/fn/{fn}", content=body, headers={"content-type": "application/json"})
        r.raise_for_status()
        return r.content

    report = await run_evaluation(fn, ens.eval, ens.eval_path(), run_one, concurrency=8)
    if report.failed_calls:
        raise SystemExit(f"{fn}: {report.failed_calls} calls failed: {report.failures}")
    assert report.score is not None
    return report.score


async def p50_ms(client: httpx.AsyncClient, fn: str, body: bytes) -> float:
    times = []
    for _ in range(LATENCY_CALLS):
        t0 = time.perf_counter()
        r = await client.post(f"/v1/fn/{fn}", content=body, headers={"content-type": "application/json"})
        r.raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def measure(url: str, ensembles: list[Manifest]) -> list[dict[str, object]]:
    rows = []
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        members = sorted({m for e in ensembles for m in e.ensemble.members})  # type: ignore[union-attr]
        for m in members:  # their own gates first: the weights of score_weighted ensembles
            (await client.post(f"/v1/registry/{m}@1.0.0/eval")).raise_for_status()
        for ens in ensembles:
            assert ens.ensemble is not None and ens.eval is not None
            first = bytes(load_dataset(ens.eval_path())[0][0].input)
            scores = {m: await score_on(client, m, ens) for m in ens.ensemble.members}
            scores[ens.name] = await score_on(client, ens.name, ens)
            slowest = max([await p50_ms(client, m, first) for m in ens.ensemble.members])
            rows.append({"ensemble": ens.name, "rule": ens.ensemble.combine, "metric": ens.eval.metric,
                         "lower_is_better": ens.eval.lower_is_better, "scores": scores,
                         "p50_ms": await p50_ms(client, ens.name, first), "slowest_member_p50_ms": slowest})
    return rows


def report(rows: list[dict[str, object]]) -> None:
    print("\n| ensemble (rule) | metric, on its dataset | members | ensemble | best member | "
          "p50 ensemble / slowest member |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        scores: dict[str, float] = r["scores"]  # type: ignore[assignment]
        name = str(r["ensemble"])
        members = {k: v for k, v in scores.items() if k != name}
        best = min(members.values()) if r["lower_is_better"] else max(members.values())
        arrow = "lower is better" if r["lower_is_better"] else "higher is better"
        listed = ", ".join(f"{k} {v:.3f}" for k, v in members.items())
        print(f"| `{name}` ({r['rule']}) | {r['metric']} ({arrow}) | {listed} | **{scores[name]:.3f}** | "
              f"{best:.3f} | {r['p50_ms']:.1f} / {r['slowest_member_p50_ms']:.1f} ms |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running hive (default: start one)")
    args = ap.parse_args()
    ensembles = [m for m in load_manifests([ROOT / "manifests"]) if m.ensemble is not None and m.eval is not None]
    needed = sorted({m for e in ensembles for m in e.ensemble.members} | {"minilm-embed"})  # type: ignore[union-attr]
    if args.url:
        rows = asyncio.run(measure(args.url, ensembles))
    else:
        with own_hive(needed) as url:
            rows = asyncio.run(measure(url, ensembles))
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
