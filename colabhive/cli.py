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
from pathlib import Path

from .config import HiveConfig, config_to_json, load_config
from .cli_up import cmd_up
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
