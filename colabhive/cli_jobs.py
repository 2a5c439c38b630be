"""``colabhive jobs submit | list | show | logs | cancel``: a running gateway's training jobs, over HTTP.

Built on the SDK (:class:`colabhive.training.client.JobsClient`). ``submit --dataset FILE``
uploads the data first and points ``dataset.id`` at it, so one command takes a builder from
files to a trained version; ``--follow`` draws a one-line progress bar on stderr and exits 0
only when the job succeeded and its version answers in the catalog.
Exit status (as ``colabhive datasets``): 0 done, 1 refused or the job did not succeed,
2 the gateway is unreachable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .cli_datasets import BAR, _client, _json, _ProgressBar, remote_options

__all__ = ["add_parsers"]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _guard(action: Callable[[], int]) -> int:
    """The one place errors become exit codes: the hive's refusal 1, no gateway 2."""
    import httpx

    from .errors import HiveError

    try:
        return action()
    except HiveError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        print(f"colabhive: {exc.code}{where}: {exc.message}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"colabhive: cannot reach the gateway: {exc}", file=sys.stderr)
        return 2


class _JobBar:
    """``job 3f2a9c1e  [#####.....]  40%  step 80/200  loss 0.2311  ETA 3s`` on stderr, ≤10 redraws/s.

    The ETA is the gateway's (``eta_s``, from the steps since this attempt began), fetched at
    most every two seconds; a line printed between redraws (a status change) clears the bar first.
    """

    def __init__(self, job_id: str, total: int | None, eta: Callable[[], float | None]) -> None:
        self.job_id, self.total, self._eta = job_id, total, eta
        self.step, self.loss, self.eta_s = 0, None, None
        self.drawn = self.asked = 0.0
        self.open = False  # a bar is on the current line
        self.shown = -1  # the step the bar last showed
        self.tty = sys.stderr.isatty()
        self.erase = "\x1b[K" if self.tty else ""  # clear to the end of the line, on a terminal only

    def point(self, data: dict[str, Any]) -> None:
        self.step = int(data.get("step", self.step))
        self.loss = data.get("loss", self.loss)
        now = time.monotonic()
        if now - self.asked >= 2.0:
            self.asked, self.eta_s = now, self._eta()
        done = self.total is not None and self.step >= self.total
        if done or now - self.drawn >= 0.1:
            self.drawn = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            frac = min(self.step / self.total, 1.0)
            filled = int(frac * BAR)
            head = f"[{'#' * filled}{'.' * (BAR - filled)}] {frac:4.0%}  step {self.step}/{self.total}"
        else:
            head = f"step {self.step}"
        loss = f"  loss {self.loss:.4g}" if isinstance(self.loss, (int, float)) else ""
        done = self.total is not None and self.step >= self.total
        eta = f"  ETA {self.eta_s:.0f}s" if self.eta_s is not None and not done else ""
        sys.stderr.write(f"\rjob {self.job_id[:8]}  {head}{loss}{eta}{self.erase}")
        self.open, self.shown = True, self.step
        sys.stderr.flush()

    def line(self, text: str) -> None:
        # on a terminal the bar is overwritten; in a log file it keeps its line
        sys.stderr.write(f"\r{self.erase}{text}\n" if self.tty or not self.open else f"\n{text}\n")
        self.open = False
        sys.stderr.flush()

    def end(self) -> None:
        if self.step:
            if self.shown != self.step:
                self._draw()
            sys.stderr.write("\n")
            self.open = False
            sys.stderr.flush()


def _status_line(data: dict[str, Any]) -> str:
    """A status event in words: ``running on node-a (site local, cpu:0), attempt 1``."""
    status = data.get("status", "?")
    if status == "running" and "children" in data:  # an experts parent: its children train on the nodes
        return f"running: {len(data['children'])} expert jobs" + (f" ({data['note']})" if data.get("note") else "")
    if status == "running":
        where = ", ".join(str(data[k]) for k in ("site", "device") if data.get(k))
        resume = f", resuming from step {data['resume_step']}" if data.get("resume_step") else ""
        return f"running on {data.get('node')} ({where}), attempt {data.get('attempt')}{resume}"
    if status == "queued" and data.get("reason"):
        return f"queued again: {data['reason']} (resumes from checkpoint step {data.get('resume_step') or 0})"
    if status == "failed":
        err = data.get("error") or {}
        return f"failed: {err.get('code', 'job_failed')}: {err.get('message', '')}"
    return status


def _verdict(client: Any, job: dict[str, Any]) -> int:
    """0 only for a succeeded job whose version the catalog answers for; the reason otherwise."""
    from .errors import HiveError

    status = job["status"]
    if status == "cancelled":
        print(f"colabhive: job {job['id']} was cancelled", file=sys.stderr)
        return 1
    if status != "succeeded":
        err = job.get("error") or {}
        print(f"colabhive: job {job['id']} {status}: {err.get('message', 'no reason given')}", file=sys.stderr)
        return 1
    version = (job.get("result") or {}).get("version") or job["output"]
    try:
        fn = client.describe(version)
    except HiveError as exc:
        print(f"colabhive: job {job['id']} succeeded but {version} does not answer: {exc.message}", file=sys.stderr)
        return 1
    res = job.get("result") or {}
    gate = "passes its gate" if res.get("passed") else "does not pass its gate"
    score = f"{res['score']:.4g}" if isinstance(res.get("score"), (int, float)) else "-"
    if "passed" not in res and "score" not in res:  # an experts group: the hive scores it once a node serves it
        gate = f"evaluated once a node serves it: GET /v1/fn/{version}"
    print(f"{version}  {fn.get('lifecycle', '')}  score {score} ({gate})  "
          f"call: POST /v1/fn/{version}; promote: colabhive models promote {version}")
    return 0


def _follow(client: Any, view: dict[str, Any]) -> int:
    job_id = view["id"]
    def eta() -> float | None:
        import httpx

        from .errors import HiveError

        try:
            return client.jobs.get(job_id).get("eta_s")
        except (HiveError, httpx.HTTPError):  # a gateway restarting: the bar waits, follow reconnects
            return None

    bar = _JobBar(job_id, view.get("total_steps"), eta)
    for ev in client.jobs.follow(job_id):
        if ev.kind == "metrics":
            bar.point(ev.data)
        elif ev.kind == "status" and not ev.final:
            bar.line(_status_line(ev.data))
    bar.end()
    return _verdict(client, client.jobs.get(job_id))


def cmd_submit(args: argparse.Namespace) -> int:
    from .training.client import read_spec

    for path in filter(None, (args.spec, args.dataset)):
        if not os.path.isfile(path):
            print(f"colabhive: no file {path!r}", file=sys.stderr)
            return 1

    def go() -> int:
        # decoded before any request: a misspelt field is named before the dataset is uploaded
        spec = read_spec(args.spec, dataset_id=_sha256(args.dataset) if args.dataset else None)
        with _client(args) as client:
            if args.dataset:
                ds = client.datasets.push(args.dataset, progress=_ProgressBar(os.path.basename(args.dataset)))
                if ds["id"] != spec.dataset.id:  # the gateway names data by its sha256: it must agree
                    print(f"colabhive: the gateway stored {args.dataset} as {ds['id']}, not {spec.dataset.id}",
                          file=sys.stderr)
                    return 1
            if args.dry_run:
                _show_plan(client.jobs.dry_run(spec))
                return 0
            view = client.jobs.submit(spec)
            print(f"{view['id']}  {view['location']}")
            if not args.follow:
                return 0
            return _follow(client, view)

    return _guard(go)


def _show_plan(plan: dict[str, Any]) -> None:
    """A dry run in words: ``accepted`` for a plain job; an experts job's partitions as a table."""
    parts = plan.get("partitions")
    if not parts:
        print(f"accepted: {plan.get('method')} job for {plan.get('output')} (nothing submitted)")
        return
    print(f"{plan['k']} partitions of {plan['rows']} rows by {plan['strategy']}"
          + (f"; {plan['note']}" if plan.get("note") else ""))
    for p in parts:
        terms = ", ".join(p["terms"][:5])
        loss = f"  loss {p['loss'][0]:.2f}-{p['loss'][1]:.2f}" if p.get("loss") else ""
        print(f"  {p['taxon']:<24} {p['size']:>6} rows  {p['steps']:>6} steps{loss}  {terms}")
        for ex in p["examples"][:2]:
            print(f"      e.g. {ex[:100]}")


def _table(jobs: list[dict[str, Any]]) -> None:
    for j in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j["created_at"]))
        steps = f"{j['step']}/{j['total_steps']}" if j.get("total_steps") else str(j["step"])
        print(f"{j['id']}  {j['status']:<9} {j['method']:<8} {steps:>13}  {when}  {j['output']}")


def _remote(args: argparse.Namespace, action: Callable[[Any], Any], show: Callable[[Any], None]) -> int:
    def go() -> int:
        with _client(args) as client:
            show(action(client))
        return 0

    return _guard(go)


def cmd_list(args: argparse.Namespace) -> int:
    return _remote(args, lambda c: c.jobs.list(args.status), _json if args.json else _table)


def cmd_show(args: argparse.Namespace) -> int:
    return _remote(args, lambda c: c.jobs.get(args.id), _json)


def cmd_cancel(args: argparse.Namespace) -> int:
    return _remote(args, lambda c: c.jobs.cancel(args.id), lambda v: print(f"{v['id']}  {v['status']}"))


def cmd_logs(args: argparse.Namespace) -> int:
    """Log lines and status changes (metric points are ``jobs show`` / GET .../metrics)."""

    def go() -> int:
        with _client(args) as client:
            events = client.jobs.follow(args.id) if args.follow else client.jobs.events(args.id)
            final = None
            for ev in events:
                if ev.kind == "log":
                    print(ev.data.get("line", ""), flush=True)
                elif ev.kind == "status":
                    print(f"[{_status_line(ev.data)}]", flush=True)
                    final = ev if ev.final else final
            if args.follow and final is not None and final.data["status"] != "succeeded":
                return 1
        return 0

    return _guard(go)


def add_parsers(sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    def remote(p: argparse.ArgumentParser) -> None:
        remote_options(p, with_config)

    jobs = sub.add_parser("jobs", help="submit, follow, list and cancel training jobs")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    sm = jsub.add_parser("submit", help="submit a job spec (.toml or .json); prints its id and URL")
    remote(sm)
    sm.add_argument("spec")
    sm.add_argument("--dataset", metavar="FILE", help="upload FILE first and train on it (sets dataset.id)")
    sm.add_argument("--follow", action="store_true",
                    help="show progress; exit 0 only if the job succeeds and its version answers")
    sm.add_argument("--dry-run", action="store_true",
                    help="only check the spec; an experts job prints its partitions (the dataset is still uploaded)")
    sm.set_defaults(func=cmd_submit)
    ls = jsub.add_parser("list", help="your jobs, newest first")
    remote(ls)
    ls.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=cmd_list)
    sh = jsub.add_parser("show", help="a job: status, node, progress, ETA, last metrics, result")
    remote(sh)
    sh.add_argument("id")
    sh.set_defaults(func=cmd_show)
    lg = jsub.add_parser("logs", help="a job's log lines and status changes")
    remote(lg)
    lg.add_argument("id")
    lg.add_argument("--follow", action="store_true",
                    help="keep printing until the job ends (exit 1 unless it succeeds)")
    lg.set_defaults(func=cmd_logs)
    cn = jsub.add_parser("cancel", help="cancel a queued or running job")
    remote(cn)
    cn.add_argument("id")
    cn.set_defaults(func=cmd_cancel)
