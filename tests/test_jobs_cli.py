"""``colabhive jobs`` and ``Client(url).jobs`` against a real hive: a gateway process and a node
process that trains tabular jobs (LightGBM on scikit-learn's breast cancer table, seconds each).

The CLI runs as a subprocess, as a builder runs it; "before any request" is shown by pointing
it at a port where nothing listens, so a request would exit 2 (unreachable), not 1.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from colabhive.errors import Conflict, InvalidSpec
from colabhive.sdk import Client
from hivectl import ROOT, HiveProcess, free_port

EXAMPLE = ROOT / "examples" / "jobs" / "tabular-lightgbm-breast-cancer.toml"
LIMITS = {"node_timeout_s": 4.0, "job_lease_s": 4.0}
FN = "bc-cli"  # every job here publishes a version of this one function, which the node hosts


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, Path]]:
    """The hive, and bc.csv written the way the README says (``python -m ...example_data``)."""
    tmp = tmp_path_factory.mktemp("jobs-cli")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", f"echo,{FN}", wait_for=["echo"])
        data = tmp / "bc.csv"
        p = subprocess.run([sys.executable, "-m", "colabhive.training.example_data", "breast-cancer", str(data)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        yield h, data
    finally:
        h.stop()


def spec_file(tmp: Path, name: str, **changes: Any) -> Path:
    """The example spec with ``changes`` (``budget__max_steps=40``), written as TOML."""
    spec = msgspec.toml.decode(EXAMPLE.read_bytes())
    for key, value in changes.items():
        *path, last = key.split("__")
        d = spec
        for p in path:
            d = d.setdefault(p, {})
        d[last] = value
    path = tmp / name
    path.write_text(toml(spec))
    return path


def toml(doc: dict[str, Any]) -> str:
    """Top-level keys, then one ``[table]`` each, deeper tables as dotted keys (JSON values are
    TOML values for the strings, numbers and lists a spec holds; msgspec only reads TOML)."""
    def pairs(d: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            out += pairs(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k} = {json.dumps(v)}"]
        return out

    lines = pairs({k: v for k, v in doc.items() if not isinstance(v, dict)})
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += [f"[{k}]", *pairs(v)]
    return "\n".join(lines) + "\n"


def cli(h: HiveProcess, *args: str, gateway: str | None = None,
        timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "colabhive", *args, "--gateway", gateway or h.url],
                          cwd=h.tmp, capture_output=True, text=True, timeout=timeout)


def test_submit_with_dataset_and_follow_lands_a_version_that_answers(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    # dataset.id left wrong on purpose: --dataset uploads bc.csv and points the job at it
    spec = spec_file(h.tmp, "one.toml", output=f"{FN}@1.0.0", dataset__id="0" * 64, budget__max_steps=40,
                     checkpoint_every=20)
    p = cli(h, "jobs", "submit", str(spec), "--dataset", str(data), "--follow")
    assert p.returncode == 0, (p.stdout, p.stderr)
    job_id, location = p.stdout.splitlines()[0].split()
    assert location == f"{h.url}/v1/jobs/{job_id}"
    assert "push bc.csv" in p.stderr and "100%" in p.stderr  # the upload's bar
    assert "step 40/40" in p.stderr and "loss " in p.stderr, p.stderr  # the job's bar
    assert "running on node-a" in p.stderr, p.stderr
    assert f"{FN}@1.0.0" in p.stdout and "passes its gate" in p.stdout, p.stdout
    view = h.get_json(f"/v1/jobs/{job_id}")
    assert view["status"] == "succeeded" and view["spec"]["dataset"]["id"] != "0" * 64
    assert h.http.get(f"/v1/datasets/{view['spec']['dataset']['id']}").json()["name"] == "bc.csv"
    fn = h.http.get(f"/v1/fn/{FN}@1.0.0")
    assert fn.status_code == 200 and fn.json()["lifecycle"] == "candidate", fn.text
    # a node fetches the new artifact and serves it (after the CLI's exit: registered is not yet loaded)
    h.wait_for(lambda: f"{FN}@1.0.0" in (h.get_json("/healthz") or {}).get("ready_versions", []), 60,
               f"{FN}@1.0.0 served")
    with data.open() as f:
        row = next(csv.DictReader(f))
    record = {k: float(v) for k, v in row.items() if k != "target"}
    answer = h.http.post(f"/v1/fn/{FN}@1.0.0", json={"record": record}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == row["target"], answer.text

    # show and list see it; list --status filters
    shown = cli(h, "jobs", "show", job_id)
    assert shown.returncode == 0 and msgspec.json.decode(shown.stdout)["result"]["version"] == f"{FN}@1.0.0"
    listed = cli(h, "jobs", "list", "--status", "succeeded")
    assert listed.returncode == 0 and job_id in listed.stdout and "40/40" in listed.stdout, listed.stdout
    assert job_id not in cli(h, "jobs", "list", "--status", "running").stdout

    # logs: the checkpoint lines and the status changes, in order, then the stream ends
    logs = cli(h, "jobs", "logs", job_id)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert lines[0] == "[queued]" and lines[1].startswith("[running on node-a") and lines[-1] == "[succeeded]"
    assert "checkpoint at step 20 " in logs.stdout and "checkpoint at step 40 " in logs.stdout, logs.stdout


def test_spec_errors_name_their_field(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    nowhere = f"http://127.0.0.1:{free_port()}"
    typo = spec_file(h.tmp, "typo.toml", output=f"{FN}@9.0.0", epochs=3)
    zero = spec_file(h.tmp, "zero.toml", output=f"{FN}@9.0.0", budget__max_steps=0)
    for path, field in ((typo, "epochs"), (zero, "budget.max_steps")):
        for extra in ((), ("--dataset", str(data))):  # refused before the upload too
            p = cli(h, "jobs", "submit", str(path), *extra, "--follow", gateway=nowhere)
            assert p.returncode == 1, (field, p.returncode, p.stderr)
            assert f"(field {field})" in p.stderr and "cannot reach" not in p.stderr, p.stderr
    with Client(nowhere) as c, pytest.raises(InvalidSpec) as exc:
        c.jobs.submit(typo)
    assert exc.value.field == "epochs"
    # a spec that decodes but that the gateway refuses: its field, exit 1; unreachable: exit 2
    missing = spec_file(h.tmp, "missing.toml", output=f"{FN}@9.0.0", dataset__id="1" * 64)
    p = cli(h, "jobs", "submit", str(missing))
    assert p.returncode == 1 and "(field dataset.id)" in p.stderr, (p.returncode, p.stderr)
    assert cli(h, "jobs", "submit", str(EXAMPLE), gateway=nowhere).returncode == 2


def test_sdk_submit_follow_and_resume(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    with Client(h.url) as c:
        ds = c.datasets.push(data)["id"]
        spec = msgspec.toml.decode(EXAMPLE.read_bytes()) | {"output": f"{FN}@2.0.0", "checkpoint_every": 10}
        spec["dataset"]["id"], spec["budget"] = ds, {"max_steps": 30}
        view = c.jobs.submit(spec)
        assert view["status"] in ("queued", "running") and view["location"].endswith(f"/v1/jobs/{view['id']}")
        events = list(c.jobs.follow(view["id"]))
        steps = [e.data["step"] for e in events if e.kind == "metrics"]
        assert steps == list(range(1, 31)), steps
        assert [e.id for e in events] == sorted(e.id for e in events) and len({e.id for e in events}) == len(events)
        assert events[-1].final and events[-1].data["status"] == "succeeded"
        assert events[-1].data["result"]["version"] == f"{FN}@2.0.0"
        assert c.jobs.get(view["id"])["status"] == "succeeded"
        assert [p["step"] for p in c.jobs.metrics(view["id"])] == steps

        # resuming after an event yields exactly the rest; events() is what is recorded so far
        middle = events[len(events) // 2].id
        assert list(c.jobs.follow(view["id"], after=middle)) == [e for e in events if e.id > middle]
        assert c.jobs.events(view["id"]) == events

        # list follows every page (one job a page here)
        mine = [j["id"] for j in c.jobs.list(page_size=1)]
        assert view["id"] in mine and len(mine) == len(set(mine)) >= 2
        assert all(j["status"] == "succeeded" for j in c.jobs.list("succeeded", page_size=1))


def test_follow_reconnects_across_a_gateway_restart(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    with Client(h.url) as c:
        ds = c.datasets.push(data)["id"]
        spec = msgspec.toml.decode(EXAMPLE.read_bytes()) | {"output": f"{FN}@3.0.0", "checkpoint_every": 1_000_000}
        spec["dataset"]["id"], spec["budget"] = ds, {"max_steps": 1_000_000}
        job_id = c.jobs.submit(spec)["id"]
        seen = []
        for ev in c.jobs.follow(job_id):
            seen.append(ev)
            if ev.kind == "metrics" and ev.data["step"] == 3:
                h.kill("gateway", signal.SIGKILL)  # the stream breaks; follow reopens it after the restart
                h.start_gateway()
                c.jobs.cancel(job_id)
        ids = [e.id for e in seen]
        assert ids == list(range(1, len(ids) + 1)), ids  # none missed, none twice
        assert seen[-1].final and seen[-1].data["status"] == "cancelled"


def test_cancel_from_the_cli_stops_a_followed_job(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    long = spec_file(h.tmp, "long.toml", output=f"{FN}@4.0.0", budget__max_steps=1_000_000,
                     checkpoint_every=1_000_000)
    follower = subprocess.Popen([sys.executable, "-m", "colabhive", "jobs", "submit", str(long), "--dataset",
                                 str(data), "--follow", "--gateway", h.url], cwd=h.tmp, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    logs: subprocess.Popen[str] | None = None
    try:
        job_id = follower.stdout.readline().split()[0]  # type: ignore[union-attr]
        logs = subprocess.Popen([sys.executable, "-m", "colabhive", "jobs", "logs", job_id, "--follow",
                                 "--gateway", h.url], cwd=h.tmp, text=True, stdout=subprocess.PIPE)
        end = time.monotonic() + 60
        while h.get_json(f"/v1/jobs/{job_id}")["step"] < 5:
            assert time.monotonic() < end, "the job never got going"
            time.sleep(0.2)
        p = cli(h, "jobs", "cancel", job_id)
        assert p.returncode == 0 and p.stdout.split() == [job_id, "cancelled"], (p.stdout, p.stderr)
        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 1 and f"job {job_id} was cancelled" in err, (follower.returncode, err)
        logged, _ = logs.communicate(timeout=30)
        assert logs.returncode == 1 and logged.splitlines()[-1] == "[cancelled]", logged
        again = cli(h, "jobs", "cancel", job_id)
        assert again.returncode == 1 and "conflict" in again.stderr, again.stderr
        with Client(h.url) as c, pytest.raises(Conflict):
            c.jobs.cancel(job_id)
        assert cli(h, "jobs", "show", "f" * 32).returncode == 1
    finally:
        for proc in (follower, logs):
            if proc is not None and proc.poll() is None:
                proc.kill()


def test_follow_of_a_failing_job_exits_1_with_its_error(hive: tuple[HiveProcess, Path]) -> None:
    h, data = hive
    bad = spec_file(h.tmp, "bad-column.toml", output=f"{FN}@5.0.0", dataset__columns={"target": "no such column"})
    p = cli(h, "jobs", "submit", str(bad), "--dataset", str(data), "--follow")
    job_id = p.stdout.split()[0]
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert f"job {job_id} failed: row 0 has no column 'no such column'" in p.stderr, p.stderr
    assert h.http.get(f"/v1/fn/{FN}@5.0.0").status_code == 404
    logs = cli(h, "jobs", "logs", job_id)
    assert logs.returncode == 0 and logs.stdout.splitlines()[-1].startswith("[failed: "), logs.stdout


def test_status_lines_name_a_node_or_an_experts_parents_children() -> None:
    from colabhive.cli_jobs import _status_line

    assert _status_line({"status": "running", "children": ["a", "b", "c"], "note": "3 partitions"}) == \
        "running: 3 expert jobs (3 partitions)"
    assert _status_line({"status": "running", "node": "node-a", "site": "local", "device": "cpu:0", "attempt": 1}) == \
        "running on node-a (local, cpu:0), attempt 1"
