"""How well `/v1/auto` splits and routes requests it was not tuned on: evals/auto_routing/{train,dev,test}.jsonl, planned dry.

Each line's input goes to ``POST {url}/v1/auto?dry_run=true`` as ``{"input": ...}``; the reply's
``plan.parts`` says which expert each part went to. A line is correct when its plan has exactly as
many parts as it lists in ``expected`` and each part, in order, went to the expected function (or,
for a record, a tabular function on exactly the expected one's features: its alternative or their
ensemble; a record cannot tell them apart). Per split it prints the request accuracy, how often the
part count was right, the part-level routing accuracy, accuracy per form and per function, the
confusions, the fallback rate, calibration (mean confidence right / wrong) and the planning latency
(client side, and the gateway's ``plan.ms``).

train tuned the router (``make models`` trains on it), dev chose its settings, test was written
apart (evals/auto_routing/HELDOUT.md) and is only scored; misses are listed for dev, not for test,
unless --show-misses is given.

    .venv/bin/python bench/auto_eval.py --start --split dev test    # its own gateway and node
    .venv/bin/python bench/auto_eval.py --split test               # against the hive on :8700 (make up)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT / "evals" / "auto_routing"
SPLITS = ("train", "dev", "test")
sys.path.insert(0, str(ROOT))
from colabhive.auto.experts import same_records  # noqa: E402
from colabhive.manifests import load_manifests  # noqa: E402

SAME_RECORDS = same_records(load_manifests([ROOT / "manifests"]))
"""A tabular model, its alternatives and their ensemble: any of them answers a record of their features."""


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no lines")
    return rows


def fn_name(ref: str) -> str:
    return ref.split("@", 1)[0]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[k]


@contextlib.contextmanager
def own_hive(router: Path | None = None) -> Iterator[str]:
    """A gateway and one node serving the catalog (the router embeds with minilm-embed)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from hivectl import HiveProcess  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="colabhive-auto-eval-") as tmp:
        h = HiveProcess(Path(tmp), auto_router=router)
        try:
            print("starting a gateway and node-a ...", file=sys.stderr, flush=True)
            h.start_gateway()
            h.start_node("node-a", wait_for=["minilm-embed"])
            _wait_catalog(h.url)
            yield h.url
        finally:
            h.stop()


def _wait_catalog(url: str, timeout: float = 600) -> None:
    """Plans choose among the experts a node serves: score only once the whole catalog is served."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = [f for f in httpx.get(f"{url}/healthz", timeout=10).json().get("not_served", [])
                   if f.get("state") in ("loading", "assigned", "members")]
        if not waiting:
            return
        time.sleep(1)
    raise SystemExit(f"the catalog was not served after {timeout:.0f} s: {waiting}")


def plan_one(client: httpx.Client, url: str, text: str) -> tuple[dict[str, Any], float]:
    """One dry-run plan: (a record of what came back, client-side latency in ms)."""
    t0 = time.perf_counter()
    try:
        r = client.post(f"{url}/v1/auto", params={"dry_run": "true"}, json={"input": text})
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}, (time.perf_counter() - t0) * 1000
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        try:
            err = r.json().get("error", {})
            detail = f"{r.status_code} {err.get('code', '')}: {err.get('message', '')}"
        except ValueError:
            detail = f"{r.status_code}: {r.text[:200]}"
        return {"error": detail}, ms
    plan = r.json().get("plan") or {}
    parts = [
        {
            "expert": p.get("expert", ""),
            "task": p.get("task"),
            "confidence": p.get("confidence"),
            "fallback": bool(p.get("fallback")),
            "why": p.get("why", ""),
        }
        for p in plan.get("parts") or []
    ]
    return {"parts": parts, "server_ms": plan.get("ms")}, ms


def chosen_label(rec: dict[str, Any]) -> str:
    if "error" in rec:
        return "<error>"
    names = [fn_name(p["expert"]) for p in rec["parts"]]
    if not names:
        return "<no parts>"
    return "+".join(names)


def expected_of(row: dict[str, Any]) -> list[str]:
    e = row["expected"]
    return [e] if isinstance(e, str) else list(e)


def _same(want: str, got: str) -> bool:
    return got in SAME_RECORDS.get(want, {want})


def evaluate(url: str, rows: list[dict[str, Any]], timeout: float, progress: bool) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(timeout=timeout) as client:
        for i, row in enumerate(rows, 1):
            rec, ms = plan_one(client, url, row["input"])
            parts = rec.get("parts") or []
            want = expected_of(row)
            got = [fn_name(p["expert"]) for p in parts]
            split_ok = len(got) == len(want)
            results.append({
                "input": row["input"], "expected": want, "form": row.get("form", "single"),
                "lang": row.get("lang", "en"), "chosen": chosen_label(rec),
                "split_ok": split_ok,
                "part_hits": [_same(w, g) for w, g in zip(want, got)] if split_ok else [],
                "correct": split_ok and all(_same(w, g) for w, g in zip(want, got)),
                "n_parts": len(parts), "fallback": any(p["fallback"] for p in parts),
                "confidences": [p["confidence"] for p in parts],
                "fast": sum("fast head" in p["why"] for p in parts),
                "why": "; ".join(p["why"] for p in parts), "error": rec.get("error"),
                "ms": round(ms, 2), "server_ms": rec.get("server_ms"),
            })
            if progress and i % 50 == 0:
                print(f"  {i}/{len(rows)}", file=sys.stderr, flush=True)
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    per: dict[str, list[bool]] = defaultdict(list)
    forms: dict[str, list[bool]] = defaultdict(list)
    confusion: Counter[tuple[str, str]] = Counter()
    conf_right, conf_wrong = [], []
    for r in results:
        forms[r["form"]].append(r["correct"])
        for w, hit, c in zip(r["expected"], r["part_hits"], r["confidences"]):
            per[w].append(hit)
            (conf_right if hit else conf_wrong).append(c)
        if not r["correct"]:
            confusion[("+".join(r["expected"]), r["chosen"])] += 1
    ok = [r for r in results if r["error"] is None]
    latencies = [r["ms"] for r in ok]
    server = [r["server_ms"] for r in ok if isinstance(r["server_ms"], (int, float))]
    parts = [h for r in results for h in r["part_hits"]]
    return {
        "lines": n,
        "correct": sum(r["correct"] for r in results),
        "accuracy": sum(r["correct"] for r in results) / n,
        "split_accuracy": sum(r["split_ok"] for r in results) / n,
        "part_accuracy": sum(parts) / len(parts) if parts else math.nan,
        "per_form": {f: {"n": len(v), "accuracy": sum(v) / len(v)} for f, v in sorted(forms.items())},
        "per_function": {fn: {"n": len(v), "correct": sum(v), "accuracy": sum(v) / len(v)}
                         for fn, v in sorted(per.items())},
        "confusion": [{"expected": e, "chosen": c, "count": k}
                      for (e, c), k in sorted(confusion.items(), key=lambda kv: (-kv[1], kv[0]))],
        "errors": sum(r["error"] is not None for r in results),
        "fast_head_share": sum(r["fast"] for r in results) / max(1, sum(r["n_parts"] for r in results)),
        "fallback_rate": sum(r["fallback"] for r in ok) / len(ok) if ok else math.nan,
        "latency_ms": {"mean": statistics.fmean(latencies) if latencies else math.nan,
                       "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "server_plan_ms": {"p50": percentile(server, 50), "p95": percentile(server, 95)},
        "confidence_mean": {"correct": statistics.fmean(conf_right) if conf_right else None,
                            "wrong": statistics.fmean(conf_wrong) if conf_wrong else None},
    }


def report(name: str, summary: dict[str, Any], results: list[dict[str, Any]], show_misses: int) -> None:
    s = summary
    print(f"\n== {name}: {s['correct']}/{s['lines']} requests right, accuracy {s['accuracy']:.3f}; "
          f"part count right {s['split_accuracy']:.3f}; parts routed right {s['part_accuracy']:.3f}")
    lat, srv = s["latency_ms"], s["server_plan_ms"]
    print(f"planning (dry run): client p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms; "
          f"gateway plan.ms p50 {srv['p50']:.1f} ms, p95 {srv['p95']:.1f} ms; errors {s['errors']}; "
          f"fallback rate {s['fallback_rate']:.3f}; parts decided in the gateway (fast head) "
          f"{s['fast_head_share']:.2f}")
    cm = s["confidence_mean"]
    if cm["correct"] is not None:
        wrong = "—" if cm["wrong"] is None else f"{cm['wrong']:.3f}"
        print(f"mean confidence of a part: routed right {cm['correct']:.3f}, wrong {wrong}")
    print("per form: " + ", ".join(f"{f} {v['accuracy']:.2f} ({v['n']})" for f, v in s["per_form"].items()))
    width = max(len(fn) for fn in s["per_function"])
    print(f"{'function (parts)':<{width}}  {'n':>4}  {'right':>5}  {'accuracy':>8}")
    for fn, v in s["per_function"].items():
        print(f"{fn:<{width}}  {v['n']:>4}  {v['correct']:>5}  {v['accuracy']:>8.3f}")
    misses = [r for r in results if not r["correct"]]
    if misses and show_misses:
        print(f"misses (first {min(show_misses, len(misses))} of {len(misses)}):")
        for r in misses[:show_misses]:
            text = " ".join(r["input"].split())
            text = text if len(text) <= 110 else text[:107] + "..."
            why = r["error"] or r["why"]
            why = why if len(why) <= 160 else why[:157] + "..."
            print(f"  [{'+'.join(r['expected'])} → {r['chosen']}] {text}\n      why: {why}")


def _finite(obj: Any) -> Any:
    """NaN (no latencies, say) as null, so that the file stays strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


OVERHEAD_FUNCTIONS = ("sentiment", "langid", "tabular-wine", "translate-en-pt")


def overhead(url: str, rows: list[dict[str, Any]], per_fn: int = 8) -> None:
    """What /auto costs over calling the chosen expert directly: the same requests, both ways.

    Both sides run the expert once; /auto adds parsing, one or two embedding calls (the
    request's instruction; the language identifier for translations) and the merge.
    """
    picked = [r for fn in OVERHEAD_FUNCTIONS for r in [x for x in rows if expected_of(x) == [fn]][:per_fn]]
    auto_ms, direct_ms = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for r in picked * 2:  # the first pass warms both paths; only the second is kept
            t0 = time.perf_counter()
            doc = c.post("/v1/auto", json={"input": r["input"]}).json()
            a = (time.perf_counter() - t0) * 1000
            part = doc["plan"]["parts"][0]
            if doc["output"][0]["status"] != "ok":  # e.g. a partial record: nothing to compare
                continue
            t0 = time.perf_counter()
            c.post(f"/v1/fn/{part['expert']}", json=part["input"]).raise_for_status()
            d = (time.perf_counter() - t0) * 1000
            auto_ms.append(a)
            direct_ms.append(d)
    n = len(auto_ms) // 2
    auto_ms, direct_ms = auto_ms[n:], direct_ms[n:]
    print(f"\n/auto end to end vs the chosen expert called directly ({n} requests over {', '.join(OVERHEAD_FUNCTIONS)}):")
    print(f"  /auto p50 {percentile(auto_ms, 50):.1f} ms, p95 {percentile(auto_ms, 95):.1f} ms; "
          f"direct p50 {percentile(direct_ms, 50):.1f} ms, p95 {percentile(direct_ms, 95):.1f} ms; "
          f"overhead p50 {percentile([a - d for a, d in zip(auto_ms, direct_ms)], 50):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:8700", help="a running hive (default %(default)s)")
    where.add_argument(
        "--start", action="store_true", help="start a hive of its own (gateway + node-a), stop it after"
    )
    ap.add_argument("--split", nargs="+", choices=SPLITS, default=["dev"], help="which splits (default dev)")
    ap.add_argument("--batch", type=int, help="only dev's lines of this batch (2, 3: written later, see the README)")
    ap.add_argument("--json", type=Path, help="write the summaries and every line's result here")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in s (default %(default)s)")
    ap.add_argument("--show-misses", type=int, help="misses to list per split (default 25 for train/dev, 0 for test)")
    ap.add_argument("--overhead", action="store_true", help="also time /auto against calling the expert directly")
    ap.add_argument("--no-router", action="store_true",
                    help="with --start: a gateway without the learned router (nearest manifest example, the baseline)")
    ap.add_argument("--router", type=Path, metavar="DIR",
                    help="with --start: the learned router in DIR (default: models/auto-router), e.g. one built with "
                         "`colabhive models build auto-router --dir DIR/..` to try without touching models/")
    args = ap.parse_args(argv)

    router = Path(tempfile.gettempdir()) / "no-such-router" if args.no_router else args.router
    ctx = (own_hive(router.resolve() if router else None) if args.start
           else contextlib.nullcontext(args.url.rstrip("/")))
    doc: dict[str, Any] = {"splits": {}}
    with ctx as url:
        for name in args.split:
            rows = load(EVAL_DIR / f"{name}.jsonl")
            if args.batch is not None and name == "dev":
                rows = [r for r in rows if r.get("batch", 1) == args.batch]
                name = f"dev (batch {args.batch})"
            print(f"{name}: {len(rows)} requests → {url}/v1/auto?dry_run=true", file=sys.stderr, flush=True)
            results = evaluate(url, rows, args.timeout, progress=True)
            summary = summarise(results)
            shown = args.show_misses if args.show_misses is not None else (0 if name == "test" else 25)
            report(name, summary, results, shown)
            doc["splits"][name] = {"summary": summary, "results": results}
        if args.overhead:
            overhead(url, load(EVAL_DIR / "train.jsonl"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(doc | {"url": url}), indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0 if summary["errors"] < len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
