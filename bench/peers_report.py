"""ColabHive rows of a bench/peers.sh results folder -> CPU split + comparison lines.

  python bench/peers_report.py bench/out/<stamp>

Compares against the figures in /work/shared/peers/RESULTS.md (primary run
20261122T190952Z), against the in-process ceiling measured in the same run
(raw.jsonl), and, when the folder has peers/ (PEERS=litserve), against LitServe
measured the same day. Also writes summary.json next to the inputs.
"""

from __future__ import annotations

import json
import pathlib
import sys

# /work/shared/peers/RESULTS.md, primary run (2026-11-22)
PEERS_MD = {
    "litserve_echo_c32_rps": 925.0,
    "litserve_echo_c1_p50_ms": 1.2,
    "litserve_batched_embed_c32_rps": 169.0,
    "raw_fp32_t1_b8": 176.0,
    "raw_fp32_t1_b32": 198.0,
}
TARGET_ECHO_X = 2.0  # echo c=32 >= 2x LitServe's
TARGET_ECHO_P50_MS = 1.0  # echo p50 at c=1 <= 1 ms
TARGET_EMBED_FRAC = 0.95  # embed c=32 >= 95 % of the in-process fp32 1-thread batch ceiling


def jsonl(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def cell(rows: list[dict], id_: str, conc: int) -> dict | None:
    return next((r for r in rows if r["id"] == id_ and r.get("conc") == conc and "rps" in r), None)


def raw_ceiling(raw: list[dict]) -> dict[int, float]:
    return {
        r["batch"]: r["sent_per_s"]
        for r in raw
        if r.get("kind") == "raw" and r["dtype"] == "fp32" and r["threads"] == 1
    }


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    http = jsonl(out / "http.jsonl")
    raw = raw_ceiling(jsonl(out / "raw.jsonl"))
    peers_http = jsonl(out / "peers" / "http.jsonl")
    peers_raw = raw_ceiling(jsonl(out / "peers" / "raw.jsonl"))
    lines: list[str] = []

    ch = [r for r in http if r["id"].startswith("CH-") and "rps" in r]
    if ch:
        lines += [
            "CPU during each measured window (gateway / node / wrk: % of one core; box: both cores, 100 % = full, as in the harness)",
            "",
            "| id | c | req/s | gateway CPU % | node CPU % | wrk CPU % | box CPU % |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in ch:
            lines.append(
                f"| {r['id']} | {r['conc']} | {r['rps']:.0f} | {r.get('gateway_cpu_pct', '-')} | "
                f"{r.get('node_cpu_pct', '-')} | {r['wrk_cpu_pct']} | {r['box_cpu_pct']} |"
            )
        lines.append("")

    echo32, echo1, emb32 = cell(http, "CH-echo", 32), cell(http, "CH-echo", 1), cell(http, "CH-embed", 32)
    summary: dict[str, object] = {}
    lines += ["Comparison (targets: echo c=32 >= 2x LitServe; echo c=1 p50 <= 1 ms; "
              "embed c=32 >= 95 % of the same-run in-process fp32 1-thread batch ceiling)", ""]

    # echo throughput
    if echo32:
        x = echo32["rps"] / PEERS_MD["litserve_echo_c32_rps"]
        ok = x >= TARGET_ECHO_X
        line = (f"* echo c=32: {echo32['rps']:.0f} req/s vs LitServe {PEERS_MD['litserve_echo_c32_rps']:.0f} "
                f"(RESULTS.md) = {x:.2f}x, target >= {TARGET_ECHO_X:.0f}x: {verdict(ok)}")
        ls = cell(peers_http, "1b", 32)
        if ls:
            line += f"; LitServe same session {ls['rps']:.0f} req/s = {echo32['rps'] / ls['rps']:.2f}x"
        lines.append(line)
        summary["echo_c32"] = {"rps": echo32["rps"], "x_litserve": round(x, 2), "pass": ok}
    else:
        lines.append("* echo c=32: no result")
    # echo latency
    if echo1:
        ok = echo1["p50_ms"] <= TARGET_ECHO_P50_MS
        line = (f"* echo c=1 p50: {echo1['p50_ms']:.2f} ms vs LitServe {PEERS_MD['litserve_echo_c1_p50_ms']} ms "
                f"(RESULTS.md), target <= {TARGET_ECHO_P50_MS} ms: {verdict(ok)}")
        ls = cell(peers_http, "1b", 1)
        if ls:
            line += f"; LitServe same session {ls['p50_ms']:.2f} ms"
        lines.append(line)
        summary["echo_c1_p50"] = {"p50_ms": echo1["p50_ms"], "pass": ok}
    else:
        lines.append("* echo c=1 p50: no result")
    # embed throughput
    if emb32:
        ceil_batches = {b: raw[b] for b in (8, 32) if b in raw}
        ceil = max(ceil_batches.values()) if ceil_batches else None
        line = (f"* embed c=32: {emb32['rps']:.0f} req/s vs LitServe batched {PEERS_MD['litserve_batched_embed_c32_rps']:.0f} "
                f"(RESULTS.md) = {emb32['rps'] / PEERS_MD['litserve_batched_embed_c32_rps']:.2f}x")
        ls = cell(peers_http, "2b", 32)
        if ls:
            line += f"; LitServe batched same session {ls['rps']:.0f} req/s = {emb32['rps'] / ls['rps']:.2f}x"
        lines.append(line)
        ok = None
        if ceil:
            frac = emb32["rps"] / ceil
            ok = frac >= TARGET_EMBED_FRAC
            shown = ", ".join(f"batch {b} {v:.0f}" for b, v in sorted(ceil_batches.items()))
            lines.append(f"* embed c=32 vs in-process fp32 1-thread ceiling, this run ({shown}; max {ceil:.0f}): "
                         f"{100 * frac:.0f} %, target >= {100 * TARGET_EMBED_FRAC:.0f} %: {verdict(ok)}")
            summary["embed_c32"] = {"rps": emb32["rps"], "ceiling": ceil, "frac": round(frac, 3), "pass": ok}
        md_ceil = max(PEERS_MD["raw_fp32_t1_b8"], PEERS_MD["raw_fp32_t1_b32"])
        lines.append(f"* embed c=32 vs RESULTS.md in-process ceiling (batch 8 {PEERS_MD['raw_fp32_t1_b8']:.0f}, "
                     f"batch 32 {PEERS_MD['raw_fp32_t1_b32']:.0f}): {100 * emb32['rps'] / md_ceil:.0f} % of {md_ceil:.0f}")
        if peers_raw:
            shown = ", ".join(f"batch {b} {v:.0f}" for b, v in sorted(peers_raw.items()))
            lines.append(f"* in-process ceiling measured by the harness's own venv this session: {shown}")
    else:
        lines.append("* embed c=32: no result")
    failed = [r for r in http if "failed" in r]
    for r in failed:
        lines.append(f"* {r['id']} FAILED: {r['failed']}")
    summary["failed"] = [r["id"] for r in failed]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
