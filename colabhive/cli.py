"""colabhive up | gateway | node | manifest validate | models | eval | datasets | jobs | keys create | token create | config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import HiveConfig, config_to_json, load_config
from .errors import ConfigError, StoreError

__all__ = ["main"]

DEFAULT_CONFIG = "hive.toml"


def _config(args: argparse.Namespace) -> HiveConfig:
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    overrides = {
        "gateway.port": getattr(args, "port", None),
        "gateway.host": getattr(args, "host", None),
    }
    cfg = load_config(path, **overrides)
    if getattr(args, "state_dir", None):
        import msgspec

        cfg = msgspec.structs.replace(cfg, state_dir=str(Path(args.state_dir).resolve()))
    return cfg


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


# ---- gateway ---------------------------------------------------------------------------
def cmd_gateway(args: argparse.Namespace) -> int:
    """Supervise Granian: on SIGTERM/SIGINT drain first, then stop it.

    Granian stops serving the moment it gets a signal, which would cut off the nodes that
    are about to deliver in-flight results; so Granian runs in its own session and only
    this process receives the signal.
    """
    cfg = _config(args)
    _logging(args.log_level)
    from .gateway.supervisor import serve_granian

    # open (and migrate) the state database here, where a refusal (e.g. a schema newer than
    # this colabhive) reaches main() and prints as one sentence, not inside Granian's worker
    _with_store(args, _nothing)

    if args.no_supervise:
        serve_granian(cfg, args.log_level)
        return 0
    import secrets

    from .gateway.admin import SECRET_ENV
    from .gateway.supervisor import die_with_parent, drain, stop_process

    secret = secrets.token_urlsafe(24)
    child_args = [sys.executable, "-m", "colabhive", "--log-level", args.log_level, "gateway", "--no-supervise"]
    if args.config or Path(DEFAULT_CONFIG).exists():
        child_args += ["--config", os.path.abspath(args.config or DEFAULT_CONFIG)]
    if args.state_dir:
        child_args += ["--state-dir", args.state_dir]
    child_args += ["--port", str(cfg.gateway.port), "--host", cfg.gateway.host]
    child = subprocess.Popen(
        child_args,
        env={**os.environ, SECRET_ENV: secret},
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop and child.poll() is None:
        time.sleep(0.1)
    if child.poll() is not None:
        return child.returncode or 1
    log = logging.getLogger("colabhive.gateway")
    log.info("draining: new calls get 503, in-flight calls have %.0f s to finish", cfg.gateway.shutdown_grace_s)
    drain(cfg.gateway_url, secret, cfg.gateway.shutdown_grace_s)
    log.info("drained; stopping the server")
    stop_process(child, grace=15)
    log.info("gateway stopped")
    return 0


# ---- node ------------------------------------------------------------------------------
def cmd_node(args: argparse.Namespace) -> int:
    cfg = _config(args)
    import msgspec

    node_cfg = cfg.node
    if args.site:
        node_cfg = msgspec.structs.replace(node_cfg, site=args.site)
    if args.functions:
        node_cfg = msgspec.structs.replace(node_cfg, functions=[f for f in args.functions.split(",") if f])
    if args.max_items:
        node_cfg = msgspec.structs.replace(node_cfg, max_items=args.max_items)
    cfg = msgspec.structs.replace(cfg, node=node_cfg)
    threads = cfg.node.torch_threads
    if threads:
        # before torch is imported anywhere, so OpenMP sizes its pool to match
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _logging(args.log_level)
    if threads:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    from .node import Node

    Node(cfg, gateway=args.gateway, name=args.name, calibrate=not args.no_calibrate).run()
    return 0


# ---- up --------------------------------------------------------------------------------
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


# ---- manifest validate -----------------------------------------------------------------
def cmd_manifest_validate(args: argparse.Namespace) -> int:
    from .manifests import validate_paths

    return validate_paths([Path(t) for t in args.paths])


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = _config(args)
    print(json.dumps(json.loads(config_to_json(cfg)), indent=2))
    return 0


# ---- credentials -----------------------------------------------------------------------
def _with_store(args: argparse.Namespace, make) -> str:  # make: async (Store) -> str
    import asyncio

    from .store import Store

    cfg = _config(args)

    async def run() -> str:
        store = Store(cfg.resolve(cfg.state_dir) / "hive.sqlite3")
        await store.open()
        try:
            return await make(store)
        finally:
            await store.close()

    return asyncio.run(run())


async def _nothing(store) -> str:  # store: Store
    return ""


def cmd_keys_create(args: argparse.Namespace) -> int:
    from .auth import create_api_key

    key = _with_store(args, lambda store: create_api_key(store, args.tenant))
    print(key)
    print(f"API key for tenant {args.tenant!r}; shown once, stored hashed.", file=sys.stderr)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from .auth import create_join_token

    token = _with_store(args, lambda store: create_join_token(store, args.note))
    print(token)
    print("join token; shown once, stored hashed. Nodes use it as node.join_token or COLABHIVE_JOIN_TOKEN.",
          file=sys.stderr)
    return 0


# ---- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colabhive", description="Run and use a ColabHive hive.")
    parser.add_argument("--log-level", default=os.environ.get("COLABHIVE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help=f"hive config file (default: ./{DEFAULT_CONFIG} if present)")
        p.add_argument("--state-dir", help="override state_dir")

    up = sub.add_parser("up", help="start the gateway and a local node; Ctrl-C stops both")
    with_config(up)
    up.add_argument("--port", type=int)
    up.add_argument("--host")
    up.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for models to load")
    up.add_argument("--no-eval", dest="eval", action="store_false",
                    help="skip evaluating versions that have no score yet once the hive is up")
    up.set_defaults(func=cmd_up)

    gw = sub.add_parser("gateway", help="run the gateway (Granian, one worker)")
    with_config(gw)
    gw.add_argument("--port", type=int)
    gw.add_argument("--host")
    gw.add_argument(
        "--no-supervise", action="store_true", help="run Granian in this process (a signal stops it at once)"
    )
    gw.set_defaults(func=cmd_gateway)

    node = sub.add_parser("node", help="run a node that pulls work from a gateway")
    with_config(node)
    node.add_argument("--gateway", help="gateway URL (default: from the config)")
    node.add_argument("--name")
    node.add_argument("--site")
    node.add_argument("--functions", help="comma-separated functions to host (default: all that fit)")
    node.add_argument("--max-items", type=int, help="most tasks per poll")
    node.add_argument(
        "--no-calibrate", action="store_true",
        help="skip measuring the devices at join (the gateway can still ask for it: POST /v1/nodes/{id}/calibrate)",
    )
    node.set_defaults(func=cmd_node)

    man = sub.add_parser("manifest", help="work with manifests")
    man_sub = man.add_subparsers(dest="manifest_command", required=True)
    val = man_sub.add_parser("validate", help="report every problem in manifest files or directories")
    val.add_argument("paths", nargs="+")
    val.set_defaults(func=cmd_manifest_validate)

    keys = sub.add_parser("keys", help="client API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    kc = keys_sub.add_parser("create", help="create an API key for a tenant (printed once)")
    with_config(kc)
    kc.add_argument("--tenant", required=True)
    kc.set_defaults(func=cmd_keys_create)

    tok = sub.add_parser("token", help="node join tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    tc = tok_sub.add_parser("create", help="create a join token (printed once)")
    with_config(tc)
    tc.add_argument("--note", default="")
    tc.set_defaults(func=cmd_token_create)

    from .cli_models import add_parsers

    add_parsers(sub, with_config)
    from .cli_datasets import add_parsers as add_dataset_parsers

    add_dataset_parsers(sub, with_config)
    from .cli_jobs import add_parsers as add_job_parsers

    add_job_parsers(sub, with_config)

    conf = sub.add_parser("config", help="print the resolved hive config (validates it)")
    with_config(conf)
    conf.set_defaults(func=cmd_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Nothing is downloaded at run time: weights ship in pip packages or are trained locally.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, StoreError) as exc:  # the operator's to fix: one sentence, no traceback
        print(f"colabhive: {exc.message}", file=sys.stderr)
        return 2
