"""Chaos run: durable async tasks while nodes and the gateway are killed with SIGKILL.

    python bench/chaos.py [--tasks 2000] [--nodes 3] [--seconds-between-kills 3] [--rate 40]

Starts a real gateway and N echo nodes on loopback (a free port, a temp state dir, through
tests/hivectl.py), then submits ``--tasks`` async tasks (``Prefer: respond-async``, each
with its own text and Idempotency-Key) at ``--rate`` per second. While they run it kills a
random node with SIGKILL every few seconds and starts it again, and once, mid-run, kills
the gateway with SIGKILL and starts it again on the same port and state dir.

The submitters retry a 429 after its Retry-After, and a connection error (the gateway
restarting) with the same Idempotency-Key, so a retry never makes a second task. At the
end every task is polled until it finishes (bounded by ``--finish-timeout``) and checked:

  submitted       tasks the gateway accepted (an id came back)
  succeeded / failed / cancelled
  lost            never finished in time, or the gateway does not know the id
  recorded_twice  a key answered with an id another key also got, a task the gateway lists
                  that no key of ours got (a retry that made a second task), or a succeeded
                  task whose result is not its own input
  rerun_after_failure  tasks whose attempts list has more than one entry (executed again
                  after a node or the gateway died under them; at-least-once, recorded once)

and the figures are printed, then once more as one JSON line (the last line of output).
Every process it started is killed at exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from chaos_report import report  # noqa: E402
from hivectl import HiveProcess, port_open  # noqa: E402


@dataclass
class Stats:
    accepted: int = 0
    replayed: int = 0  # 202 with Idempotent-Replayed: a retry found the task its first try made
    http_429: int = 0
    conn_errors: int = 0
    other_retries: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # a 4xx other than 429: not retried
    gave_up: int = 0
    node_kills: int = 0
    gateway_kills: int = 0
    gateway_down_s: float = 0.0
    events: list[str] = field(default_factory=list)


class Chaos:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.hive = HiveProcess(
            tmp,
            node={"torch_threads": 0, "heartbeat_s": 0.5},
            limits={
                "node_timeout_s": 2.0,
                "max_attempts": args.max_attempts,
                "queue_size": args.queue_size,
            },
        )
        self.node_names = [f"node-{i}" for i in range(args.nodes)]
        self.stats = Stats()
        self.ids: dict[int, str] = {}  # task number -> id the gateway gave it
        self.texts: dict[int, str] = {}
        self.submitted_n = 0
        self.submitting_done = False
        self.t0 = time.monotonic()

    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        self.stats.events.append(line)
        if not self.args.quiet:
            print(line, flush=True)

    # ---- processes ---------------------------------------------------------------------
    def start(self) -> None:
        self.hive.start_gateway()
        for name in self.node_names:
            self.hive.start_node(name, "--functions", "echo")
        self.hive.wait_for(
            lambda: set(self.node_names) <= set(self.hive.node_names()), 60, "all nodes registered"
        )
        self.hive.wait_ready(["echo"], timeout=60)

    def restart_node(self, name: str) -> None:
        self.hive.kill(name, signal.SIGKILL)
        self.hive.start_node(name, "--functions", "echo")

    def restart_gateway(self) -> float:
        t = time.monotonic()
        self.hive.kill("gateway", signal.SIGKILL)
        # the supervisor is gone; its server child dies with it (PDEATHSIG), then frees the port
        end = time.monotonic() + 30
        while port_open(self.hive.port) and time.monotonic() < end:
            time.sleep(0.05)
        self.hive.start_gateway(wait=True)
        return time.monotonic() - t

    async def chaos_loop(self) -> None:
        gateway_killed = False
        every = self.args.seconds_between_kills
        while not self.submitting_done:
            await asyncio.sleep(every * (0.75 + 0.5 * self.rng.random()))
            if self.submitting_done:
                break
            if not gateway_killed and self.submitted_n >= self.args.tasks // 2:
                gateway_killed = True
                self.log(f"kill -9 gateway (after {self.submitted_n} tasks submitted)")
                down = await asyncio.to_thread(self.restart_gateway)
                self.stats.gateway_kills += 1
                self.stats.gateway_down_s += down
                self.log(f"gateway back after {down:.1f} s")
                continue
            name = self.rng.choice(self.node_names)
            self.log(f"kill -9 {name}")
            await asyncio.to_thread(self.restart_node, name)
            self.stats.node_kills += 1

    # ---- submitting ------------------------------------------------------------------------
    async def submit(self, client: httpx.AsyncClient, n: int) -> None:
        text = f"chaos {self.run_id} #{n} {self.rng.getrandbits(64):016x}"
        self.texts[n] = text
        key = f"chaos-{self.run_id}-{n}"
        body = json.dumps({"text": text}).encode()
        headers = {"Prefer": "respond-async", "Idempotency-Key": key, "Content-Type": "application/json"}
        deadline = time.monotonic() + self.args.submit_timeout
        delay = 0.1
        while time.monotonic() < deadline:
            try:
                r = await client.post("/v1/fn/echo", content=body, headers=headers)
            except httpx.TransportError:
                # the gateway is down or restarting: the same key again can only find the same task
                self.stats.conn_errors += 1
                await asyncio.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, 2.0)
                continue
            if r.status_code == 202:
                self.ids[n] = r.json()["id"]
                self.stats.accepted += 1
                if r.headers.get("idempotent-replayed") == "true":
                    self.stats.replayed += 1
                return
            if r.status_code == 429:
                self.stats.http_429 += 1
                try:
                    wait = float(r.headers.get("retry-after", "1"))
                except ValueError:
                    wait = 1.0
                await asyncio.sleep(wait * (1 + 0.2 * self.rng.random()))
                continue
            if r.status_code >= 500:  # 503 while a gateway drains or starts: retry like a lost connection
                self.stats.other_retries[str(r.status_code)] += 1
                await asyncio.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, 2.0)
                continue
            self.stats.rejected[f"{r.status_code} {r.text[:120]}"] += 1
            return
        self.stats.gave_up += 1

    async def submit_all(self) -> None:
        limits = httpx.Limits(max_connections=self.args.concurrency, max_keepalive_connections=self.args.concurrency)
        async with httpx.AsyncClient(base_url=self.hive.url, timeout=10, limits=limits) as client:
            sem = asyncio.Semaphore(self.args.concurrency)
            pending: set[asyncio.Task[None]] = set()
            start = time.monotonic()

            async def one(n: int) -> None:
                try:
                    await self.submit(client, n)
                finally:
                    sem.release()

            for n in range(self.args.tasks):
                due = start + n / self.args.rate
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await sem.acquire()
                self.submitted_n = n + 1
                t = asyncio.create_task(one(n))
                pending.add(t)
                t.add_done_callback(pending.discard)
                if (n + 1) % 500 == 0:
                    self.log(f"{n + 1} tasks submitted")
            if pending:
                await asyncio.gather(*pending)
        self.submitting_done = True
        self.log(f"all {self.args.tasks} submissions done ({self.stats.accepted} accepted)")

    # ---- checking --------------------------------------------------------------------------
    async def ensure_nodes(self) -> None:
        for name in self.node_names:
            p = self.hive.nodes.get(name)
            if p is None or p.poll() is not None:
                self.log(f"{name} was down at the end: starting it")
                await asyncio.to_thread(self.hive.start_node, name, "--functions", "echo")

    async def fetch(self, client: httpx.AsyncClient, tid: str) -> dict[str, Any] | None:
        for _ in range(20):
            try:
                r = await client.get(f"/v1/tasks/{tid}")
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            if r.status_code == 404:
                return None
            if r.status_code == 200:
                return r.json()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"GET /v1/tasks/{tid} kept failing")

    async def list_all(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            r = await client.get("/v1/tasks", params=params)
            r.raise_for_status()
            page = r.json()
            out += page["tasks"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    async def finish_and_check(self) -> dict[str, Any]:
        await self.ensure_nodes()
        async with httpx.AsyncClient(base_url=self.hive.url, timeout=30) as client:
            end = time.monotonic() + self.args.finish_timeout
            ours = set(self.ids.values())
            while True:
                listed = await self.list_all(client)
                status = Counter(t["status"] for t in listed if t["id"] in ours)
                unfinished = status["queued"] + status["running"]
                if unfinished == 0 or time.monotonic() > end:
                    break
                self.log(f"waiting: {unfinished} unfinished ({dict(status)})")
                await asyncio.sleep(1.0)
            finish_wait = time.monotonic()
            sem = asyncio.Semaphore(16)

            async def get(tid: str) -> tuple[str, dict[str, Any] | None]:
                async with sem:
                    return tid, await self.fetch(client, tid)

            rows = dict(await asyncio.gather(*(get(tid) for tid in ours)))

        id_counts = Counter(self.ids.values())
        dup_ids = sum(c - 1 for c in id_counts.values() if c > 1)
        extra = [t["id"] for t in listed if t["id"] not in ours]
        result = Counter()
        wrong_result = 0
        attempts_hist: Counter[int] = Counter()
        rerun = 0
        failed_errors: Counter[str] = Counter()
        for n, tid in self.ids.items():
            row = rows.get(tid)
            if row is None:
                result["unknown_id"] += 1
                continue
            result[row["status"]] += 1
            attempts = len(row.get("attempts") or [])
            attempts_hist[attempts] += 1
            if attempts > 1:
                rerun += 1
            if row["status"] == "succeeded" and row.get("result") != {"text": self.texts[n]}:
                wrong_result += 1
            if row["status"] == "failed":
                failed_errors[(row.get("error") or {}).get("message", "?")[:100]] += 1
        lost = result["queued"] + result["running"] + result["unknown_id"]
        return {
            "tasks": self.args.tasks,
            "submitted": len(self.ids),
            "not_submitted": self.args.tasks - len(self.ids),
            "succeeded": result["succeeded"],
            "failed": result["failed"],
            "cancelled": result["cancelled"],
            "lost": lost,
            "lost_unfinished": result["queued"] + result["running"],
            "lost_unknown_id": result["unknown_id"],
            "recorded_twice": dup_ids + len(extra) + wrong_result,
            "duplicate_ids": dup_ids,
            "extra_tasks_listed": len(extra),
            "wrong_result": wrong_result,
            "rerun_after_failure": rerun,
            "attempts_histogram": {str(k): v for k, v in sorted(attempts_hist.items())},
            "failed_errors": dict(failed_errors),
            "http_429": self.stats.http_429,
            "connection_errors": self.stats.conn_errors,
            "other_retries": dict(self.stats.other_retries),
            "idempotent_replays": self.stats.replayed,
            "rejected": dict(self.stats.rejected),
            "gave_up_submitting": self.stats.gave_up,
            "node_kills": self.stats.node_kills,
            "gateway_kills": self.stats.gateway_kills,
            "gateway_down_s": round(self.stats.gateway_down_s, 2),
            "finish_wait_s": round(finish_wait - self.t_submit_done, 2),
            "wall_s": round(time.monotonic() - self.t0, 2),
        }

    async def run(self) -> dict[str, Any]:
        self.t0 = time.monotonic()
        await asyncio.to_thread(self.start)
        self.log(f"gateway {self.hive.url} and {len(self.node_names)} echo nodes up; state in {self.hive.tmp}")
        chaos = asyncio.create_task(self.chaos_loop())
        try:
            await self.submit_all()
        finally:
            self.submitting_done = True
            self.t_submit_done = time.monotonic()
            await chaos  # let a restart in progress finish before checking
        return await self.finish_and_check()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds-between-kills", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=40.0, help="tasks submitted per second (spread over the chaos)")
    ap.add_argument("--concurrency", type=int, default=32, help="submissions in flight at most")
    ap.add_argument("--queue-size", type=int, default=20, help="limits.queue_size (small, so 429s happen)")
    ap.add_argument("--max-attempts", type=int, default=10)
    ap.add_argument("--submit-timeout", type=float, default=120.0, help="give up submitting one task after this")
    ap.add_argument("--finish-timeout", type=float, default=90.0, help="wait this long for the last tasks")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite state)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="colabhive-chaos-"))
    chaos = Chaos(args, tmp)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (a background job)
    with contextlib.suppress(AttributeError):
        signal.signal(signal.SIGHUP, on_signal)
    metrics: dict[str, Any] | None = None
    try:
        metrics = asyncio.run(chaos.run())
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        chaos.hive.stop()
        if args.keep or metrics is None or metrics["lost"] or metrics["recorded_twice"]:
            print(f"logs and state kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(metrics)
    print(json.dumps(metrics, sort_keys=True))
    ok = metrics["lost"] == 0 and metrics["recorded_twice"] == 0 and metrics["not_submitted"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
