"""``colabhive up``: the whole hive on this machine (gateway, a local node, evaluations) in one command.

It waits for the catalog before it says the hive is up: a line as each function becomes served, one
when all that this hive can serve are (or which cannot, and why), then the banner; Ctrl-C stops
every process it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import HiveConfig

__all__ = ["cmd_up"]


def _get_json(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _local_join_token(args: argparse.Namespace, cfg: HiveConfig) -> str:
    """The local node's token when the hive is closed to tokenless nodes ("" when it is open)."""
    if cfg.node.join_token or os.environ.get("COLABHIVE_JOIN_TOKEN"):
        return ""
    if cfg.auth.join_tokens:
        return cfg.auth.join_tokens[0]

    async def mint(store) -> str:  # store: Store
        from .auth import create_join_token

        closed = bool(await store.fetch("any_join_token"))
        return await create_join_token(store, "local node (colabhive up)") if closed else ""

    from .cli import _with_store  # the CLI's store helper, shared with `keys create`

    return _with_store(args, mint)


def _wait_served(
    url: str, procs: list, only: list[str], local_node: bool, timeout: float, interrupted,
) -> tuple[list[str], bool]:
    """Report each function as it becomes served, then the whole catalog this hive can serve
    (everything but what /healthz says cannot be: ``unplaced`` or ``not_promoted``); on timeout,
    what is still not served and why. Returns (served names, whether a hive process died)."""
    from .gateway.readiness import SETTLED

    t0 = time.monotonic()
    deadline = t0 + timeout
    reported: set[str] = set()
    health: dict = {}
    while not interrupted():
        health = _get_json(url + "/healthz") or health
        unserved = {u["function"]: u for u in health.get("not_served", [])}
        served = [n for n in health.get("ready", []) if not only or n in only]
        new = [n for n in served if n not in reported]
        if new:
            nodes = (_get_json(url + "/v1/nodes") or {}).get("nodes", [])
            fns = {f["name"]: f for f in (_get_json(url + "/v1/fn") or {}).get("functions", [])}
            for name in sorted(new):
                ref = (fns.get(name) or {}).get("default") or name
                where = sorted(n["name"] for n in nodes if ref in n.get("functions", []))
                if (fns.get(name) or {}).get("ensemble") is not None:
                    where = ["the gateway (an ensemble)"]
                print(f"ready: {ref} on {', '.join(where) or 'a node'} ({time.monotonic() - t0:.1f} s)",
                      flush=True)
                reported.add(name)
        pending = {n: u for n, u in unserved.items() if (not only or n in only) and u["state"] not in SETTLED}
        if health and health.get("nodes", 0) > 0 and not pending:
            total = len(reported) + sum(1 for n in unserved if not only or n in only)
            took = time.monotonic() - t0
            if len(reported) == total:
                print(f"all {total} functions served after {took:.1f} s", flush=True)
            else:
                cannot = [u for n, u in sorted(unserved.items()) if not only or n in only]
                print(f"all {len(reported)} functions this hive can serve are served after {took:.1f} s; "
                      f"{len(cannot)} of {total} cannot be here:", flush=True)
                for u in cannot:
                    print(f"  not served: {u['function']}: {u['reason']}", flush=True)
            return sorted(reported), False
        if health and not local_node and health.get("nodes", 0) == 0:
            print("colabhive: no local node (node.local = false); functions are served once a node joins",
                  flush=True)
            return sorted(reported), False
        if any(p.poll() is not None for p in procs):
            print("colabhive: a hive process exited during start-up", file=sys.stderr)
            return sorted(reported), True
        if time.monotonic() > deadline:
            print(f"colabhive: after {timeout:.0f} s (--ready-timeout), {len(pending)} function(s) are still "
                  "not served:", flush=True)
            for n, u in sorted(pending.items()):
                print(f"  not served: {n}: {u['reason']}", flush=True)
            return sorted(reported), False
        time.sleep(0.3)
    return sorted(reported), False


def cmd_up(args: argparse.Namespace) -> int:
    from .gateway.supervisor import stop_process

    from .cli import DEFAULT_CONFIG, _config

    cfg = _config(args)
    cfg_file = os.path.abspath(args.config or DEFAULT_CONFIG)
    base = [sys.executable, "-m", "colabhive"]
    common = ["--config", cfg_file] if Path(cfg_file).exists() else []
    if args.state_dir:
        common += ["--state-dir", args.state_dir]
    gw_cmd = base + ["gateway", *common, "--port", str(cfg.gateway.port), "--host", cfg.gateway.host]
    url = cfg.gateway_url
    print(f"colabhive: starting the gateway on {url} (state in {cfg.resolve(cfg.state_dir)})", flush=True)
    procs: list[subprocess.Popen[bytes]] = [subprocess.Popen(gw_cmd)]
    interrupted = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + 60
        while _get_json(url + "/healthz") is None:
            if interrupted or procs[0].poll() is not None or time.monotonic() > deadline:
                print("colabhive: the gateway did not start; see its log above", file=sys.stderr)
                return 1
            time.sleep(0.2)
        if cfg.node.local:
            node_cmd = base + ["node", *common, "--gateway", url]
            print("colabhive: starting a local node", flush=True)
            env = dict(os.environ)
            token = _local_join_token(args, cfg)
            if token:
                env["COLABHIVE_JOIN_TOKEN"] = token
            procs.append(subprocess.Popen(node_cmd, env=env))
        ready, failed = _wait_served(url, procs, cfg.node.functions, cfg.node.local, args.ready_timeout,
                                     lambda: interrupted)
        if failed:
            return 1
        print(f"\nColabHive is up at {url}", flush=True)
        print(f"  ready functions: {', '.join(sorted(ready)) or '(none yet)'}")
        print(f"  catalog: curl -s {url}/v1/fn")
        if "minilm-embed" in ready:
            print(f"""  try:     curl -s {url}/v1/fn/minilm-embed -d '{{"text": "hello"}}'""")
        print(f"  docs:    {url}/docs\n  Ctrl-C stops the hive.\n", flush=True)
        if args.eval and not interrupted:
            _evaluate_in_background(url)
        while not interrupted:
            for p in procs:
                if p.poll() is not None:
                    print(f"colabhive: process {p.args[3]} exited with {p.returncode}", file=sys.stderr)
                    interrupted = True
            time.sleep(0.3)
        return 0
    finally:
        print("colabhive: stopping", flush=True)
        for p in reversed(procs):  # node first, so it can hand back its work
            stop_process(p, grace=15)
        print("colabhive: stopped", flush=True)


def _evaluate_in_background(url: str) -> None:
    """Score what has no score yet, in a thread: the hive serves (and Ctrl-C works) meanwhile."""
    import threading

    from .cli_models import evaluate_unscored

    def run() -> None:
        print("colabhive: evaluating versions not yet scored (GET /v1/fn shows the scores)", flush=True)
        try:
            evaluate_unscored(url, lambda line: print(line, flush=True))
            print("colabhive: evaluations done", flush=True)
        except Exception as exc:  # the hive keeps serving whatever an evaluation does
            print(f"colabhive: evaluation stopped: {exc}", file=sys.stderr)

    threading.Thread(target=run, name="evaluate", daemon=True).start()


