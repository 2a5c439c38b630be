"""Does the expert group behind ``/v1/auto`` beat the best single general model on a mixed set of tasks?

The set is drawn from the catalog's own held-out / evaluation data, ``--per-task`` items per task
(seeded sample): sentiment, language id, intent, EN→PT translation, wine cultivar (tabular) and
US real-GDP forecasting. Each item becomes ONE natural-language request that states the task and
carries the payload. The same request goes to both sides:

* expert group: ``POST /v1/auto {"input": request}``; the chosen expert's output is scored (label,
  language, text, predictions.0.label, forecast). A request routed to an expert that cannot give the
  answer (a *routing miss*) or whose part failed (an *expert error*) scores as wrong.
* monolith: ``POST /v1/fn/smollm2-chat`` with the request plus a one-line answer-format instruction
  that lists the allowed answers, greedy decoding; its answer is parsed leniently.

Metrics: accuracy (labels), corpus chrF (translation, ``colabhive.registry.evaluation.chrf``) and
MAE ÷ seasonal-naive MAE (forecasting, as the catalog's ``mae_ratio``: an unusable answer is charged
twice the baseline's error). The overall row is the mean of per-task normalised scores: accuracy as
is, chrF/100, ``max(0, 1 - mae_ratio)``. Requests are sent one at a time, so latencies are per item.

    .venv/bin/python bench/expert_vs_monolith.py --start [--per-task 20] [--seed 0] [--json out.json]
    .venv/bin/python bench/expert_vs_monolith.py --url http://127.0.0.1:8700
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from colabhive.registry.evaluation import chrf, field_value  # noqa: E402
from monolith_answers import (  # noqa: E402
    parse_cultivar,
    parse_forecast,
    parse_label,
    parse_language,
    parse_translation,
)

MONOLITH = "smollm2-chat"
TIMEOUT_MS = 300_000
LABEL_TOKENS = 16
"""Room for a one-sentence answer ("The text is written in Finnish."), not only a bare label."""
FUNCTIONS = ["minilm-embed", "sentiment", "langid", "intent", "translate-en-pt", "tabular-wine", "fracast",
             MONOLITH]


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _quote(text: str) -> str:
    """Quote a payload the way a careful writer would: '…', or "…" when the text has an apostrophe."""
    if ("'" in text or "’" in text) and '"' not in text:
        return f'"{text}"'
    return f"'{text}'"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass
class Item:
    task: str
    request: str
    expected: Any
    instruction: str  # appended for the monolith only: the answer format and the allowed answers
    max_tokens: int
    baseline: list[float] | None = None
    horizon: int | None = None
    result: dict[str, Any] = field(default_factory=dict)


# ---- the evaluation set -----------------------------------------------------------------------------
def build_items(per_task: int, seed: int) -> list[Item]:
    rng = random.Random(seed)

    def sample(path: Path) -> list[dict[str, Any]]:
        lines = _read(path)
        return rng.sample(lines, min(per_task, len(lines)))

    items: list[Item] = []
    for ln in sample(ROOT / "models/sentiment-minilm/eval.jsonl"):
        items.append(Item("sentiment", f"Is this text positive, negative or neutral: {_quote(ln['input']['text'])}",
                          ln["expected"], "Answer with one word: negative, neutral or positive.", LABEL_TOKENS))
    codes = sorted({ln["expected"] for ln in _read(ROOT / "evals/langid.jsonl")})
    for ln in sample(ROOT / "evals/langid.jsonl"):
        items.append(Item("langid", f"Which language is this text written in? {_quote(ln['input']['text'])}",
                          ln["expected"],
                          f"Answer with the two-letter ISO 639-1 code only, one of: {', '.join(codes)}.",
                          LABEL_TOKENS))
    labels = json.loads((ROOT / "models/intent-minilm/labels.json").read_text())
    for ln in sample(ROOT / "evals/intent.jsonl"):
        items.append(Item("intent", f"What does the user want: {_quote(ln['input']['text'])}", ln["expected"],
                          f"Answer with one label from this list: {', '.join(labels)}.", LABEL_TOKENS))
    for ln in sample(ROOT / "evals/translate-en-pt.jsonl"):
        items.append(Item("translation", f"Translate into Portuguese: {ln['input']['text']}", ln["expected"],
                          "Answer with the Portuguese translation only.", 48))
    for ln in sample(ROOT / "models/tabular-wine/eval.jsonl"):
        rec = ", ".join(f"{k}={_num(v)}" for k, v in ln["input"]["record"].items())
        items.append(Item("wine", f"Which cultivar is this wine? {rec}", ln["expected"],
                          "Answer with one word: cultivar_1, cultivar_2 or cultivar_3.", LABEL_TOKENS))
    for ln in sample(ROOT / "evals/fracast-realgdp.jsonl"):
        h = int(ln["input"]["horizon"])
        series = ", ".join(_num(v) for v in ln["input"]["series"])
        # 8 values of this size are ~86 SmolLM2 tokens: 96 leaves the monolith room to give them all
        items.append(Item("forecast", f"Forecast the next {h} values: {series}", ln["expected"],
                          f"Answer with the next {h} values only, as comma-separated numbers.", 96,
                          baseline=ln["baseline"], horizon=h))
    return items


TASKS = {  # task -> (metric, experts whose output carries the answer, field read from it)
    "sentiment": ("accuracy", {"sentiment"}, "label"),
    "langid": ("accuracy", {"langid"}, "language"),
    "intent": ("accuracy", {"intent"}, "label"),
    "translation": ("chrF", {"translate-en-pt"}, "text"),
    "wine": ("accuracy", {"tabular-wine"}, "predictions.0.label"),
    "forecast": ("mae_ratio", {"fracast", "patchtst-co2"}, "forecast"),  # any forecaster can answer
}



# ---- the two sides ---------------------------------------------------------------------------------
def ask_experts(c: httpx.Client, item: Item) -> dict[str, Any]:
    metric, experts, path = TASKS[item.task]
    t0 = time.perf_counter()
    r = c.post("/v1/auto", json={"input": item.request}, headers={"x-timeout-ms": str(TIMEOUT_MS)})
    ms = (time.perf_counter() - t0) * 1000
    out: dict[str, Any] = {"ms": round(ms, 1), "http": r.status_code}
    if r.status_code != 200:
        out.update(outcome="expert_error", error=r.text[:300], answer=None)
        return out
    doc = r.json()
    slots = doc["output"]
    out["experts"] = [s["expert"] for s in slots]
    out["parts"] = len(slots)
    mine = [s for s in slots if s["expert"].split("@")[0] in experts]
    if not mine:
        out.update(outcome="routing_miss", answer=None, why=[p.get("why") for p in doc["plan"]["parts"]],
                   got=[s.get("output") or s.get("error") for s in slots])
        return out
    slot = mine[0]
    if slot["status"] != "ok":
        out.update(outcome="expert_error", error=slot.get("error"), answer=None)
        return out
    answer = field_value(slot["output"], path)
    if item.task == "forecast" and not (isinstance(answer, list) and len(answer) == item.horizon):
        out.update(outcome="expert_error", error=f"forecast of the wrong shape: {answer!r:.200}", answer=None)
        return out
    out.update(outcome="ok", answer=answer)
    return out


def ask_monolith(c: httpx.Client, item: Item, labels: dict[str, list[str]]) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": f"{item.request}\n{item.instruction}"}],
            "max_tokens": item.max_tokens, "temperature": 0}
    t0 = time.perf_counter()
    r = c.post(f"/v1/fn/{MONOLITH}", json=body, headers={"x-timeout-ms": str(TIMEOUT_MS)})
    ms = (time.perf_counter() - t0) * 1000
    out: dict[str, Any] = {"ms": round(ms, 1), "http": r.status_code}
    if r.status_code != 200:
        out.update(outcome="error", error=r.text[:300], answer=None)
        return out
    raw = r.json().get("text", "")
    out["raw"] = raw
    if item.task in ("sentiment", "intent"):
        answer: Any = parse_label(raw, labels[item.task])
    elif item.task == "langid":
        answer = parse_language(raw, labels["langid"])
    elif item.task == "wine":
        answer = parse_cultivar(raw)
    elif item.task == "translation":
        answer = parse_translation(raw)
    else:
        answer = parse_forecast(raw, item.horizon or 0)
    out.update(outcome="ok" if answer not in (None, "") else "unparsed", answer=answer)
    return out


# ---- scoring ----------------------------------------------------------------------------------------
def _abs_err(pred: list[float], truth: list[float]) -> float:
    return sum(abs(float(p) - float(t)) for p, t in zip(pred, truth))


def score(task: str, items: list[Item], side: str) -> float:
    metric = TASKS[task][0]
    answers = [it.result[side]["answer"] for it in items]
    if metric == "accuracy":
        return sum(a == it.expected for a, it in zip(answers, items)) / len(items)
    if metric == "chrF":
        return chrf([a if isinstance(a, str) else "" for a in answers], [it.expected for it in items])
    model = base = 0.0
    for a, it in zip(answers, items):
        b = _abs_err(it.baseline or [], it.expected)
        base += b
        ok = isinstance(a, list) and len(a) == len(it.expected) and all(isinstance(x, (int, float)) for x in a)
        model += _abs_err(a, it.expected) if ok else 2 * b
    return model / base if base else float("inf")


def normalised(task: str, value: float) -> float:
    metric = TASKS[task][0]
    if metric == "chrF":
        return value / 100
    if metric == "mae_ratio":
        return max(0.0, 1 - value)
    return value


# ---- running -----------------------------------------------------------------------------------------
def run(url: str, items: list[Item]) -> dict[str, Any]:
    labels = {
        "sentiment": ["negative", "neutral", "positive"],
        "langid": sorted({ln["expected"] for ln in _read(ROOT / "evals/langid.jsonl")}),
        "intent": json.loads((ROOT / "models/intent-minilm/labels.json").read_text()),
    }
    with httpx.Client(base_url=url, timeout=TIMEOUT_MS / 1000 + 30) as c:
        # one unscored call on each side first, so neither pays for a cold start
        c.post("/v1/auto", json={"input": "Which language is this text written in? 'Bonjour à tous'"})
        c.post(f"/v1/fn/{MONOLITH}", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
        for i, it in enumerate(items, 1):
            it.result["experts"] = ask_experts(c, it)
            it.result["monolith"] = ask_monolith(c, it, labels)
            e, m = it.result["experts"], it.result["monolith"]
            print(f"[{i:3}/{len(items)}] {it.task:11} auto={e['outcome']:12} {e['ms']:7.0f} ms  "
                  f"mono={m['outcome']:8} {m['ms']:7.0f} ms", file=sys.stderr, flush=True)

    rows = []
    for task in TASKS:
        group = [it for it in items if it.task == task]
        if not group:
            continue
        ex, mo = score(task, group, "experts"), score(task, group, "monolith")
        rows.append({
            "task": task, "n": len(group), "metric": TASKS[task][0], "experts": ex, "monolith": mo,
            "experts_norm": normalised(task, ex), "monolith_norm": normalised(task, mo),
            "routing_misses": sum(it.result["experts"]["outcome"] == "routing_miss" for it in group),
            "expert_errors": sum(it.result["experts"]["outcome"] == "expert_error" for it in group),
            "split": sum(it.result["experts"].get("parts", 1) > 1 for it in group),
            "monolith_unparsed": sum(it.result["monolith"]["outcome"] != "ok" for it in group),
            "experts_chosen": _count(e for it in group for e in it.result["experts"].get("experts", [])),
            "experts_ms": statistics.mean(it.result["experts"]["ms"] for it in group),
            "monolith_ms": statistics.mean(it.result["monolith"]["ms"] for it in group),
        })
    overall = {
        "experts": statistics.mean(r["experts_norm"] for r in rows),
        "monolith": statistics.mean(r["monolith_norm"] for r in rows),
        "experts_ms": statistics.mean(it.result["experts"]["ms"] for it in items),
        "monolith_ms": statistics.mean(it.result["monolith"]["ms"] for it in items),
        "routing_misses": sum(r["routing_misses"] for r in rows),
        "expert_errors": sum(r["expert_errors"] for r in rows),
    }
    return {"rows": rows, "overall": overall}


def _count(names: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def _fmt(metric: str, v: float) -> str:
    return f"{v:.1f}" if metric == "chrF" else f"{v:.3f}"


def table(report: dict[str, Any]) -> str:
    lines = ["| task | n | metric | expert group via /auto | monolith (smollm2-chat) | routing misses |",
             "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        note = f" ({r['expert_errors']} expert errors)" if r["expert_errors"] else ""
        lower = " (lower is better)" if r["metric"] == "mae_ratio" else ""
        lines.append(f"| {r['task']} | {r['n']} | {r['metric']}{lower}"
                     f" | {_fmt(r['metric'], r['experts'])}{note} | {_fmt(r['metric'], r['monolith'])} "
                     f"| {r['routing_misses']} |")
    o = report["overall"]
    n = sum(r["n"] for r in report["rows"])
    lines.append(f"| **overall** | {n} | mean normalised score | **{o['experts']:.3f}** | **{o['monolith']:.3f}** "
                 f"| {o['routing_misses']} |")
    lines.append(f"| mean latency per item | {n} | ms | {o['experts_ms']:.0f} | {o['monolith_ms']:.0f} | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8700", help="a running hive")
    ap.add_argument("--start", action="store_true", help="start a hive of its own (tests/hivectl.py)")
    ap.add_argument("--per-task", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the report and every item's answers here")
    args = ap.parse_args()

    items = build_items(args.per_task, args.seed)
    t0 = time.perf_counter()
    if args.start:
        sys.path.insert(0, str(ROOT / "tests"))
        from hivectl import HiveProcess

        with tempfile.TemporaryDirectory(prefix="colabhive-evm-") as tmp:
            h = HiveProcess(Path(tmp))
            try:
                h.start_gateway()
                # the node serves the whole catalog, so /auto has every expert to choose from (and to get wrong)
                h.start_node("node-a", wait_for=FUNCTIONS)
                report = run(h.url, items)
            except BaseException:
                print(h.all_logs(), file=sys.stderr)
                raise
            finally:
                h.stop()
    else:
        report = run(args.url, items)
    wall = time.perf_counter() - t0

    print(f"\n## Expert group via /auto vs one general model ({MONOLITH}); "
          f"{args.per_task} per task, seed {args.seed}\n")
    print(table(report))
    print("\nnormalised: accuracy as is, chrF/100, max(0, 1 - mae_ratio); "
          "an unusable forecast costs twice the baseline's error")
    for r in report["rows"]:
        print(f"- {r['task']}: experts chosen {r['experts_chosen']}; split into >1 part: {r['split']}; "
              f"monolith unparsed/failed: {r['monolith_unparsed']}; "
              f"latency auto {r['experts_ms']:.0f} ms, monolith {r['monolith_ms']:.0f} ms")
    print(f"\nwall time {wall:.0f} s")
    if args.json:
        doc = {"per_task": args.per_task, "seed": args.seed, "wall_s": round(wall, 1), **report,
               "items": [{"task": it.task, "request": it.request, "expected": it.expected,
                          "instruction": it.instruction, "max_tokens": it.max_tokens, **it.result} for it in items]}
        args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
