"""``colabhive datasets push | list | show | rm``: a running gateway's datasets, over HTTP.

Built on the SDK (:class:`colabhive.datasets.client.DatasetsClient`), so the CLI and Python
callers upload the same way: streamed, with a progress bar on stderr for the CLI.
Exit status: 0 done, 1 the gateway refused (its error on stderr), 2 the gateway is unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["add_parsers"]

BAR = 30


class _ProgressBar:
    """``push data.csv  [######......]  42%  12.0/28.6 MiB`` redrawn on stderr, at most 10 times a second
    (``fetch ...`` for a download)."""

    def __init__(self, label: str, verb: str = "push") -> None:
        self.label, self.verb = label, verb
        self.last = 0.0

    def __call__(self, sent: int, total: int) -> None:
        now = time.monotonic()
        if sent < total and now - self.last < 0.1:
            return
        self.last = now
        frac = sent / total if total else 1.0
        filled = int(frac * BAR)
        mib = 1024 * 1024
        end = "\n" if sent >= total else ""
        sys.stderr.write(f"\r{self.verb} {self.label}  [{'#' * filled}{'.' * (BAR - filled)}] {frac:4.0%}  "
                         f"{sent / mib:.1f}/{total / mib:.1f} MiB{end}")
        sys.stderr.flush()


def _client(args: argparse.Namespace):  # -> colabhive.sdk.Client
    from .cli_models import _gateway
    from .sdk import Client

    key = args.api_key or os.environ.get("COLABHIVE_API_KEY", "")
    return Client(_gateway(args), timeout_s=args.timeout, api_key=key)


def _run(args: argparse.Namespace, action: Callable[[Any], Any], show: Callable[[Any], None]) -> int:
    import httpx

    from .errors import HiveError

    try:
        with _client(args) as client:
            result = action(client)
    except HiveError as exc:
        print(f"colabhive: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"colabhive: cannot reach the gateway: {exc}", file=sys.stderr)
        return 2
    show(result)
    return 0


def _json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def cmd_push(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.file):
        print(f"colabhive: no file {args.file!r}", file=sys.stderr)
        return 1
    bar = _ProgressBar(os.path.basename(args.file))
    return _run(args, lambda c: c.datasets.push(args.file, args.name, format=args.format, progress=bar), _json)


def _table(datasets: list[dict[str, Any]]) -> None:
    for d in datasets:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["created_at"]))
        print(f"{d['id']}  {d['format']:<7} {d['rows']:>10} rows {d['bytes']:>12} B  {when}  {d['name']}")


def cmd_list(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.datasets.list(), _json if args.json else _table)


def cmd_show(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.datasets.get(args.id), _json)


def cmd_rm(args: argparse.Namespace) -> int:
    return _run(args, lambda c: c.datasets.delete(args.id), lambda _: print(f"deleted {args.id}"))


def remote_options(p: argparse.ArgumentParser, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """What every command that talks to a gateway takes (the jobs commands too)."""
    with_config(p)
    p.add_argument("--gateway", help="gateway URL (default: from the config)")
    p.add_argument("--api-key", help="your API key (default: $COLABHIVE_API_KEY)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the gateway")


def add_parsers(sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    def remote(p: argparse.ArgumentParser) -> None:
        remote_options(p, with_config)

    ds = sub.add_parser("datasets", help="upload, list, show and delete datasets (JSONL, CSV, Parquet)")
    dsub = ds.add_subparsers(dest="datasets_command", required=True)
    push = dsub.add_parser("push", help="upload FILE (streamed; the format from its suffix); prints the dataset")
    remote(push)
    push.add_argument("file")
    push.add_argument("--name", help="a name to list it by (default: the file name)")
    push.add_argument("--format", choices=["jsonl", "csv", "parquet"], help="when the suffix does not say")
    push.set_defaults(func=cmd_push)
    ls = dsub.add_parser("list", help="your datasets, newest first")
    remote(ls)
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=cmd_list)
    sh = dsub.add_parser("show", help="a dataset's schema, row count and first rows")
    remote(sh)
    sh.add_argument("id")
    sh.set_defaults(func=cmd_show)
    rm = dsub.add_parser("rm", help="delete a dataset (refused while a training job uses it)")
    remote(rm)
    rm.add_argument("id")
    rm.set_defaults(func=cmd_rm)
