"""The platform's cost on a training job: steps/s through the hive against the loop run directly,
and the cost of a resume after ``kill -9`` of the node running it.

    python bench/train_overhead.py [--rounds 3] [--steps 15] [--warmup 3] [--kill-at 7] [--threads 1]
                                   [--batch 2] [--seq-len 64] [--checkpoint-every 5] [--lease-s 30]

The job is the LoRA example (``examples/jobs/lora-smollm2-qa.toml``: SmolLM2-135M-Instruct, r 8 on
q/v, chatterbot-corpus question/answer pairs) with a smaller batch and sequence so a round takes
seconds, not minutes. Each round runs the same spec twice, in alternating order so a drift in the
machine's load falls on both sides:

- **direct**: ``colabhive.training.loop.run_job`` in one process (the same loop a node calls, with
  the same checkpoint cadence writing to local disk), on the rows read back from the uploaded file.
  It is a child in a session of its own, as the node is: with autogroup scheduling the kernel
  shares the CPUs between sessions, so both sides must stand in the same place in that split;
- **hive**: ``POST /v1/jobs`` to a real gateway with one node process (``tests/hivectl.py``),
  ``torch_threads`` set to the same count; the node also posts metrics every 0.5 s, tars and
  uploads each checkpoint, exports and uploads the result. The gateway and node keep the shipped
  heartbeat and poll settings (``hive.toml``), and the hive is started once, before the rounds.

steps/s is read off the metric points' own ``time`` (the wall clock at the end of each step, which
the loop records on both sides): (N - warmup) / (time[N] - time[warmup]). The first ``--warmup``
steps (model load, first-step allocation) are left out, the evaluation and export after the last
step are not timed. Overhead = 1 - median(hive) / median(direct). The two loss curves are
compared too (same seed and threads: they should agree to float noise). On a box others load,
rates swing between rounds, so it also prints the CPU seconds of each whole job (load, steps,
eval, export): the direct process against the node plus the gateway, which that noise hardly
moves. The bench waits on the job's SSE stream rather than polling, so it adds no load of its own.

The resume part starts a second node, submits the job with ``--kill-at + 3`` steps, and when the
node running it has written step ``--kill-at`` to its metrics file sends it SIGKILL. It reports the
seconds from that death to the job being requeued (the SSE ``status: queued`` event, bounded below
by ``limits.job_lease_s``: a lease is never cut short), to the lease on the other node, and to that
node's first new step (its point's ``time``); the step it resumed from (the last uploaded
checkpoint) and how many finished steps were redone.

No assertions: it prints the figures whichever way they fall, and writes them to
``--out`` (``bench/out/train-overhead-<UTC stamp>/``: ``table.md``, ``summary.json``, the hive's logs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
# the gateway and nodes run this checkout's code, as this process does
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXAMPLE = REPO / "examples" / "jobs" / "lora-smollm2-qa.toml"
DONE = ("succeeded", "failed", "cancelled")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="direct + hive pairs (default 3)")
    p.add_argument("--steps", type=int, default=15, help="steps per run (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the rate (default 3)")
    p.add_argument("--kill-at", type=int, default=7, help="step at which the node is killed (default 7; 0: skip)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1, as hive.toml)")
    p.add_argument("--batch", type=int, default=2, help="examples per step (default 2)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per example (default 64)")
    p.add_argument("--checkpoint-every", type=int, default=5, help="steps between checkpoints (default 5)")
    p.add_argument("--lease-s", type=float, default=30.0, help="limits.job_lease_s (default 30, the shipped value)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default bench/out/train-overhead-<stamp>)")
    p.add_argument("--direct-worker", nargs=3, metavar=("SPEC", "DATA", "POINTS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps <= args.warmup + 1:
        p.error("--steps must exceed --warmup + 1: the rate needs two timed steps")
    return args


def lora_spec(args: argparse.Namespace, dataset: str, output: str, steps: int) -> dict[str, Any]:
    """The example LoRA spec with this run's budget, batch and cadence (eval kept to one short answer:
    it runs after the timed steps, but each round pays for it)."""
    import msgspec

    spec = msgspec.toml.decode(EXAMPLE.read_bytes())
    spec.update(output=output, checkpoint_every=args.checkpoint_every, budget={"max_steps": steps})
    spec["dataset"]["id"] = dataset
    spec["eval"] = {"split": 0.1, "metric": "chrf", "threshold": 0.0, "max_rows": 1}
    spec["hparams"].update(batch_size=args.batch, seq_len=args.seq_len, eval_max_tokens=4)
    return spec


def steady_rate(points: list[dict[str, Any]], warmup: int) -> tuple[float, float]:
    """Steps per second after the first ``warmup`` steps, from the points' wall clock: over the
    elapsed time (every cost counted, checkpoints too), and as 1 / the median gap between steps
    (what a step costs when no other process on the box happens to take the core)."""
    by = {p["step"]: p["time"] for p in points}
    last = max(by)
    gaps = [by[k] - by[k - 1] for k in range(warmup + 1, last + 1)]
    return (last - warmup) / (by[last] - by[warmup]), 1 / statistics.median(gaps)


# ---- the two sides -------------------------------------------------------------------------
def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (from /proc; gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def direct_run(args: argparse.Namespace, spec: dict[str, Any], data: Path,
               work: Path) -> tuple[list[dict[str, Any]], float]:
    """The loop a node runs, in one process of its own: its metric points and the CPU seconds of
    the job (from the spec's decoding to the export, as the node's are counted; not its imports).

    A child in a new session, as the node is, rather than this process: the kernel's autogroup
    scheduling shares the CPUs between sessions, so on a box other people load, a loop in the
    bench's session would get a different share than the node does and the ratio would measure that.
    """
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--direct-worker",
           str(work / "spec.json"), str(data), str(work / "points.json")]
    with (work / "direct.log").open("wb") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            timeout=1800).returncode
    if rc != 0:
        raise RuntimeError(f"the direct run failed ({rc}):\n{(work / 'direct.log').read_text()[-3000:]}")
    got = json.loads((work / "points.json").read_text())
    return got["points"], got["cpu_s"]


def direct_worker(spec_path: Path, data: Path, points_out: Path) -> None:
    """The direct run's process: the spec's steps through ``run_job`` on the dataset file's rows."""
    from colabhive.training import decode_spec
    from colabhive.training.loop import resolve_base, run_job
    from colabhive.training.methods import get_method

    from colabhive.training.example_data import read_dataset

    import peft  # noqa: F401  (imported before the clock starts: a node that has run a job has them loaded)
    import transformers  # noqa: F401

    job, hp = decode_spec(spec_path.read_bytes())
    base = resolve_base(job.base, [REPO / "manifests"], get_method(job.method).base_tasks)
    rows = read_dataset(data)  # the uploaded file's rows, as the node parses them
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="train-direct-") as work:
        # the whole job, evaluation and export included, so its CPU seconds compare with the node's
        run_job(job, hp, rows, Path(work), base=base)
        cpu = time.process_time() - cpu0
        points = [json.loads(ln) for ln in (Path(work) / "metrics.jsonl").read_text().splitlines()]
    points_out.write_text(json.dumps({"points": points, "cpu_s": cpu}))


def wait_job(h: Any, job_id: str, until: Any, timeout: float = 600) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = h.http.get(f"/v1/jobs/{job_id}").json()
        if until(view):
            return view
        if view["status"] in DONE:
            raise RuntimeError(f"job {job_id} ended {view['status']}: {view.get('error')}\n{h.all_logs()}")
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not there in {timeout} s: {view}")


def hive_run(h: Any, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], float, float]:
    """One job through the hive: its metric points, and the CPU seconds the node and the gateway
    (its server worker included) used from submit to the end. It waits on the job's SSE stream,
    not by polling, so the bench puts no load of its own on the gateway while the job trains."""
    from hivectl import descendants

    assert h.gateway is not None
    node, gateway = [h.nodes["node-a"].pid], [h.gateway.pid, *descendants(h.gateway.pid)]
    node0, gw0 = cpu_s(node), cpu_s(gateway)
    r = h.http.post("/v1/jobs", json=spec)
    if r.status_code != 202:
        raise RuntimeError(f"submit: {r.status_code} {r.text}")
    job_id = r.json()["id"]
    final: dict[str, Any] = {}
    with h.http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as events:
        kind = ""
        for line in events.iter_lines():  # the stream ends after the job's final status
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "status":
                final = json.loads(line[6:])
    node_cpu, gw_cpu = cpu_s(node) - node0, cpu_s(gateway) - gw0
    if final.get("status") != "succeeded":
        raise RuntimeError(f"job {job_id} ended {final}\n{h.all_logs()}")
    return h.http.get(f"/v1/jobs/{job_id}/metrics").json()["points"], node_cpu, gw_cpu


# ---- resume ----------------------------------------------------------------------------------
class StatusWatch(threading.Thread):
    """Follows a job's SSE stream and stamps each status event as it arrives."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id = url, job_id
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(60, read=None)) as http:
            with http.stream("GET", f"/v1/jobs/{self.job_id}/events") as s:
                kind = ""
                for line in s.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "status":
                        self.seen.append((time.time(), json.loads(line[6:])))


def resume_cost(h: Any, args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    h.start_node("node-b", "--functions", "echo", wait_for=["echo"])
    steps = args.kill_at + 3
    r = h.http.post("/v1/jobs", json=lora_spec(args, dataset, "bench-lora-resume@1.0.0", steps))
    job_id = r.json()["id"]
    watch = StatusWatch(h.url, job_id)
    watch.start()
    victim = wait_job(h, job_id, lambda v: v["status"] == "running")["node"]
    metrics = h.tmp / "var" / "node-cache" / victim / "jobs" / job_id / "metrics.jsonl"
    reached, end = 0, time.monotonic() + 600
    while reached < args.kill_at:  # the node's own file: it is killed right after writing that step
        if time.monotonic() > end:
            raise TimeoutError(f"{victim} did not reach step {args.kill_at}\n{h.all_logs()}")
        lines = [ln for ln in (metrics.read_text().splitlines() if metrics.exists() else []) if ln.endswith("}")]
        reached = json.loads(lines[-1])["step"] if lines else 0
        time.sleep(0.005)
    died = time.time()
    h.kill(victim, signal.SIGKILL)
    done_steps = max(json.loads(ln)["step"] for ln in metrics.read_text().splitlines())
    view = wait_job(h, job_id, lambda v: v["status"] == "succeeded")
    points = h.http.get(f"/v1/jobs/{job_id}/metrics").json()["points"]
    watch.join(10)
    second = view["attempts"][1]
    from_step = second["from_step"]
    queued = next((t for t, ev in watch.seen if ev["status"] == "queued" and ev.get("reason") == "lease lost"), None)
    first_new = next(p["time"] for p in points if p["step"] == from_step + 1)
    return {
        "killed": victim, "resumed_on": second["node"], "killed_after_step": done_steps, "from_step": from_step,
        "redone": done_steps - from_step, "requeued_s": None if queued is None else queued - died,
        "leased_s": second["at"] - died, "first_new_step_s": first_new - died,
        "continuous": [p["step"] for p in points] == list(range(1, steps + 1)), "lease_s": args.lease_s,
    }


# ---- report ------------------------------------------------------------------------------------
def _pct(direct: float, hive: float) -> str:
    return f"{100 * (1 - hive / direct):+.1f} %"


def table(args: argparse.Namespace, rounds: list[dict[str, Any]], resume: dict[str, Any] | None,
          load: tuple[float, float]) -> str:
    """Markdown: one row per round, the medians (the overhead goal is on these) and the spread."""
    out = [
        f"load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at the end, on {os.cpu_count()} CPUs",
        f"LoRA on smollm2-chat (r 8, q/v), batch {args.batch} x {args.seq_len} tokens, {args.threads} torch "
        f"thread(s), {args.steps} steps a run (first {args.warmup} not timed), checkpoint every "
        f"{args.checkpoint_every}. steps/s over the elapsed time; in brackets 1 / the median gap between steps",
        "",
        "| round | direct steps/s | hive steps/s | overhead | max abs loss diff |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(rounds, 1):
        out.append(f"| {i} ({r['first']} first) | {r['direct']:.3f} ({r['direct_median_gap']:.3f}) | "
                   f"{r['hive']:.3f} ({r['hive_median_gap']:.3f}) | {_pct(r['direct'], r['hive'])} "
                   f"({_pct(r['direct_median_gap'], r['hive_median_gap'])}) | {r['loss_diff']:.1e} |")
    keys = ("direct", "hive", "direct_median_gap", "hive_median_gap")
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    out.append(f"| **median** | **{med['direct']:.3f}** ({med['direct_median_gap']:.3f}) | **{med['hive']:.3f}** "
               f"({med['hive_median_gap']:.3f}) | **{_pct(med['direct'], med['hive'])}** "
               f"({_pct(med['direct_median_gap'], med['hive_median_gap'])}); goal <= 5 % | |")
    cpu = {k: statistics.median(r["cpu"][k] for r in rounds) for k in ("direct", "node", "gateway")}
    spread = []
    for side in ("direct", "hive"):
        lo, hi = min(r[side] for r in rounds), max(r[side] for r in rounds)
        spread.append(f"{lo:.3f}-{hi:.3f} ({100 * (hi - lo) / med[side]:.0f} %)")
    over = [100 * (1 - r["hive"] / r["direct"]) for r in rounds]
    out.append(f"| spread (min-max) | {spread[0]} | {spread[1]} | {min(over):+.1f} to {max(over):+.1f} % | |")
    extra = cpu["node"] + cpu["gateway"] - cpu["direct"]
    out += [
        "",
        "CPU seconds per whole job (load, steps, eval, export; median over rounds): how much more work the hive",
        "does, which the box's noise hardly moves",
        "",
        "| direct process | node | gateway | hive - direct |",
        "|---|---|---|---|",
        f"| {cpu['direct']:.1f} | {cpu['node']:.1f} | {cpu['gateway']:.1f} | "
        f"{extra:+.1f} ({100 * extra / cpu['direct']:+.1f} %) |",
    ]
    if resume is not None:
        rq = resume["requeued_s"]
        out += [
            "",
            f"Resume: kill -9 of {resume['killed']} after step {resume['killed_after_step']} "
            f"(limits.job_lease_s {resume['lease_s']:g})",
            "",
            "| | |",
            "|---|---|",
            f"| death -> requeued | {'n/a' if rq is None else f'{rq:.1f} s'} |",
            f"| death -> leased to {resume['resumed_on']} | {resume['leased_s']:.1f} s |",
            f"| death -> first new step on {resume['resumed_on']} | {resume['first_new_step_s']:.1f} s |",
            f"| resumed from step | {resume['from_step']} |",
            f"| finished steps redone | {resume['redone']} |",
            f"| step count continuous | {'yes' if resume['continuous'] else 'NO'} |",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # before torch loads
    if args.direct_worker:
        import torch

        torch.set_num_threads(args.threads)
        direct_worker(*map(Path, args.direct_worker))
        return 0
    from hivectl import HiveProcess

    from colabhive.training import example_data

    out = args.out or REPO / "bench" / "out" / time.strftime("train-overhead-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    h = HiveProcess(out, limits={"job_lease_s": args.lease_s, "node_timeout_s": 6.0},
                    node={"heartbeat_s": 2.0, "poll_wait_ms": 20000, "torch_threads": args.threads},
                    telemetry={"exporter": "none"})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
        data = out / "qa-all.jsonl"
        example_data.write_dataset(example_data.EXAMPLES["qa-all"](), data)
        r = h.http.post("/v1/datasets", content=data.read_bytes(), headers={"content-type": "application/jsonl"})
        dataset = r.json()["id"]
        print(f"hive at {h.url}, logs in {h.logs}; dataset {dataset[:12]}…", flush=True)
        rounds = []
        for i in range(args.rounds):
            spec = lora_spec(args, dataset, f"bench-lora-{i}@1.0.0", args.steps)
            sides = ["direct", "hive"] if i % 2 == 0 else ["hive", "direct"]
            curves: dict[str, list[dict[str, Any]]] = {}
            cpu: dict[str, float] = {}
            for side in sides:
                t0 = time.monotonic()
                if side == "direct":
                    curves[side], cpu["direct"] = direct_run(args, spec, data, out / "direct" / str(i + 1))
                else:
                    curves[side], cpu["node"], cpu["gateway"] = hive_run(h, spec)
                rate, med = steady_rate(curves[side], args.warmup)
                print(f"round {i + 1} {side}: {rate:.3f} steps/s elapsed, {med:.3f} by the median gap "
                      f"({time.monotonic() - t0:.0f} s wall)", flush=True)
            diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(curves["direct"], curves["hive"], strict=True))
            (d, dm), (hv, hm) = steady_rate(curves["direct"], args.warmup), steady_rate(curves["hive"], args.warmup)
            rounds.append({"first": sides[0], "direct": d, "hive": hv, "direct_median_gap": dm,
                           "hive_median_gap": hm, "loss_diff": diff, "cpu": cpu})
        resume = None
        if args.kill_at:
            print(f"resume: killing the job's node after step {args.kill_at} …", flush=True)
            resume = resume_cost(h, args, dataset)
    finally:
        h.stop()
    text = table(args, rounds, resume, (load_before, os.getloadavg()[0]))
    print("\n" + text)
    (out / "table.md").write_text(text + "\n")
    (out / "summary.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                  "rounds": rounds, "resume": resume}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
