"""``colabhive models ...`` and ``colabhive eval``: build, evaluate, promote, roll back, retire, export.

Everything but ``build`` and ``verify`` talks to a running gateway over HTTP (its URL from
``--gateway`` or the config; an API key from ``--api-key`` or ``COLABHIVE_API_KEY``), so
an operator can manage a remote hive from anywhere the gateway is reachable. ``export``
downloads what it needs from the gateway too (nothing is read from the gateway's disk);
its exit status is that of ``colabhive jobs``: 0 written, 1 refused (the reason on
stderr), 2 the gateway is unreachable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_datasets import remote_options

if TYPE_CHECKING:
    from .training.export import ExportRecord

__all__ = ["add_parsers"]

log = logging.getLogger("colabhive.cli")


def cmd_models_build(args: argparse.Namespace) -> int:
    from .recipes import RECIPES, build

    names = args.names or list(RECIPES)  # in order: the /auto router learns from the built catalog, last
    models_dir = Path(args.dir).resolve()
    for name in names:
        build(name, models_dir, seed=args.seed, force=args.force)
    return 0


def _gateway(args: argparse.Namespace) -> str:
    if args.gateway:
        return args.gateway.rstrip("/")
    from .cli import _config

    return _config(args).gateway_url.rstrip("/")


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    import httpx

    headers = {}
    key = args.api_key or os.environ.get("COLABHIVE_API_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    try:
        r = httpx.request(method, _gateway(args) + path, json=body, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"colabhive: cannot reach the gateway at {_gateway(args)}: {exc}", file=sys.stderr)
        return 0, None
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, {"error": {"code": "bad_reply", "message": r.text[:200]}}


def _report(status: int, data: Any) -> int:
    """Print the reply as JSON; the exit status says whether the gateway agreed (0) or refused (1)."""
    if data is None:
        return 2
    print(json.dumps(data, indent=2))
    if status >= 400:
        err = data.get("error", {})
        print(f"colabhive: {err.get('code')}: {err.get('message')}", file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    return _report(*_call(args, "POST", f"/v1/registry/{args.ref}/eval"))


def cmd_promote(args: argparse.Namespace) -> int:
    return _report(*_call(args, "POST", f"/v1/registry/{args.ref}/promote", {"to": args.to}))


def cmd_rollback(args: argparse.Namespace) -> int:
    return _report(*_call(args, "POST", f"/v1/registry/{args.name}/rollback"))


def cmd_retire(args: argparse.Namespace) -> int:
    return _report(*_call(args, "POST", f"/v1/registry/{args.ref}/retire"))


def cmd_list(args: argparse.Namespace) -> int:
    status, data = _call(args, "GET", "/v1/fn")
    if data is None or status >= 400:
        return _report(status, data)
    for f in data["functions"]:
        for v in f["versions"]:
            ev = v.get("evaluation") or {}
            score = f"{ev.get('metric')}={ev.get('score')}" if ev else "not evaluated"
            nodes = len(v["nodes"])
            print(f"{v['ref']:<36} {v['lifecycle']:<10} {f['task']:<15} {score:<28} nodes={nodes}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-hash every artifact on disk and compare with its record (no gateway needed)."""
    from .cli import _config
    from .manifests import load_manifests
    from .registry.artifacts import verify

    cfg = _config(args)
    bad = 0
    for m in load_manifests([cfg.resolve(d) for d in cfg.manifest_dirs]):
        if args.refs and m.ref not in args.refs and m.name not in args.refs:
            continue
        recorded, now = verify(m)
        if not recorded.sha256:
            print(f"{m.ref:<36} no record   now {now[:16] or '-'}")
            continue
        ok = recorded.sha256 == now
        bad += not ok
        print(f"{m.ref:<36} {'ok' if ok else 'MISMATCH':<11} {recorded.sha256[:16]} ({recorded.recorded_by})")
    return 1 if bad else 0


def _exported(record: ExportRecord, out: Path) -> str:
    """What was written, in words, with the line that loads it."""
    versions = " + ".join(record.versions)
    on = f" on {record.base}" if record.base else ""
    if record.kind == "files":
        count = sum(1 for p in out.rglob("*") if p.is_file())
        prov = ", provenance.json included" if (out / "provenance.json").is_file() else ""
        return f"{out}: {versions}'s files as the hive holds them ({count} files{prov})"
    mix = ""
    if len(record.versions) > 1:
        weights = ",".join(f"{w:g}" for w in record.weights or [])
        mix = f" ({record.combination} mix, weights {weights})"
    if record.kind == "merged":
        return (f"{out}: {versions}{mix} merged into {record.base or 'its base'}; "
                f"load it with AutoModelForCausalLM.from_pretrained({str(out)!r})")
    return f"{out}: PEFT adapter {versions}{mix}{on}; load it with PeftModel.from_pretrained(base, {str(out)!r})"


def cmd_export(args: argparse.Namespace) -> int:
    from .cli_datasets import _client, _ProgressBar
    from .cli_jobs import _guard
    from .training.export import export

    out = Path(args.out)

    def say(line: str) -> None:
        print(f"colabhive: {line}", file=sys.stderr, flush=True)

    def go() -> int:
        try:
            with _client(args) as client:
                record = export(args.refs, out, registry=client, merged=args.merged, weights=args.weights,
                                combination=args.combination, base_dir=Path(args.base) if args.base else None,
                                say=say, progress=lambda ref: _ProgressBar(ref, verb="fetch"))
        except OSError as exc:  # a full disk, a read-only --out: this machine's, not the hive's
            print(f"colabhive: cannot write the export to {out}: {exc}", file=sys.stderr)
            return 1
        print(_exported(record, out.absolute()))
        return 0

    return _guard(go)


def add_parsers(sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    def remote(p: argparse.ArgumentParser) -> None:
        with_config(p)
        p.add_argument("--gateway", help="gateway URL (default: from the config)")
        p.add_argument("--api-key", help="an operator's API key (default: $COLABHIVE_API_KEY)")
        p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the gateway")

    models = sub.add_parser("models", help="build, evaluate, promote, roll back and retire model versions")
    msub = models.add_subparsers(dest="models_command", required=True)
    b = msub.add_parser("build", help="train or convert the models that recipes make (skips built ones)")
    b.add_argument("names", nargs="*", help="recipes to build (default: all)")
    b.add_argument("--dir", default="models", help="where built models go (default: ./models)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="rebuild even if already built")
    b.set_defaults(func=cmd_models_build)

    ls = msub.add_parser("list", help="every version with its state, latest score and nodes")
    remote(ls)
    ls.set_defaults(func=cmd_list)
    pr = msub.add_parser("promote", help="evaluate NAME@VER on the hive and promote it if it passes its gate")
    remote(pr)
    pr.add_argument("ref", help="name@version")
    pr.add_argument("--to", choices=["ready", "preferred"], default="preferred")
    pr.set_defaults(func=cmd_promote)
    rb = msub.add_parser("rollback", help="make the previously preferred version of NAME preferred again")
    remote(rb)
    rb.add_argument("name")
    rb.set_defaults(func=cmd_rollback)
    rt = msub.add_parser("retire", help="retire NAME@VER (pinned calls get 410)")
    remote(rt)
    rt.add_argument("ref")
    rt.set_defaults(func=cmd_retire)
    ex = msub.add_parser(
        "export", help="write a version out: a PEFT adapter, the base with it merged (--merged), several adapters "
        "of one base mixed with weights into one, or any other version's files")
    remote_options(ex, with_config)
    ex.add_argument("refs", nargs="+", metavar="NAME@VER",
                    help="the version(s); several: adapters of one base to mix")
    ex.add_argument("--out", required=True, metavar="DIR", help="a new or empty directory to write into")
    ex.add_argument("--merged", action="store_true",
                    help="fold the adapter (or the mix) into its base: a plain transformers model with its tokenizer")
    ex.add_argument("--weights", metavar="W,W,...",
                    help="one weight per version, in order (default: equal weights summing to 1)")
    ex.add_argument("--combination", choices=["cat", "linear", "svd"],
                    help="how adapters mix: cat (default; exact, rank = the sum), svd (the same sum at the largest "
                    "rank), linear (mixes A and B themselves; equal ranks only)")
    ex.add_argument("--base", metavar="DIR",
                    help="local weights of the base to merge into (default: fetched from the gateway)")
    ex.set_defaults(func=cmd_export)
    vf = msub.add_parser("verify", help="re-hash artifacts on disk and compare with their records")
    with_config(vf)
    vf.add_argument("refs", nargs="*", help="names or name@version (default: all)")
    vf.set_defaults(func=cmd_verify)

    ev = sub.add_parser("eval", help="run NAME@VER's declared evaluation on the hive and print the report")
    remote(ev)
    ev.add_argument("ref", help="name@version")
    ev.set_defaults(func=cmd_eval)


def evaluate_unscored(url: str, out: Callable[[str], None] = print) -> int:
    """Evaluate every served version that declares an evaluation and has no score yet for
    its current artifact and dataset, so ``GET /v1/fn`` shows scores for the whole catalog.
    Returns how many failed their gate."""
    import httpx

    with httpx.Client(base_url=url, timeout=600) as http:
        catalog = http.get("/v1/fn").json()["functions"]
        failed = 0
        # ensembles last: a score-weighted one weighs its members by the scores evaluated first
        versions = sorted((v for f in catalog for v in f["versions"]), key=lambda v: "ensemble" in v)
        for v in versions:
            ev, spec = v.get("evaluation"), v.get("eval_spec")
            if spec is None or not v["nodes"] or v["lifecycle"] == "retired":
                continue
            if ev and ev.get("artifact_sha256") == v["artifact"]["sha256"]:
                continue
            r = http.post(f"/v1/registry/{v['ref']}/eval")
            if r.status_code != 200:
                out(f"  eval {v['ref']}: {r.json().get('error', {}).get('message', r.text)}")
                continue
            rep = r.json()
            failed += not rep["passed"]
            verdict = "passes" if rep["passed"] else "FAILS"
            cmp = "<=" if rep["lower_is_better"] else ">="
            out(f"  eval {v['ref']:<32} {rep['metric']} {rep['score']:.4g} ({verdict} {cmp} {rep['threshold']}, "
                f"n={rep['n']}, {rep['duration_s']:.1f} s)")
        return failed
