"""`colabhive up` as a user runs it: one command brings up gateway + node, Ctrl-C takes all down.

Started as a subprocess on a free port with its own config and state dir; nothing may be
left behind after SIGINT: no listening port, no process mentioning the config.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hivectl import MANIFESTS, free_port, port_open, write_config


class Up:
    """A running `colabhive up`, its stdout collected by a thread (children share the pipe)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(
            tmp / "hive.toml",
            {"state_dir": "var", "manifest_dirs": [str(MANIFESTS)]},
            {
                "gateway": {"host": "127.0.0.1", "port": free_port()},  # --port must win over this
                "node": {"torch_threads": 1, "heartbeat_s": 1.0, "poll_wait_ms": 5000},
                "telemetry": {"exporter": "none"},
            },
        )
        self.state = tmp / "state"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "colabhive", "up", "--config", str(self.config)]
        cmd += ["--port", str(self.port), "--state-dir", str(self.state), "--ready-timeout", "600", "--no-eval"]
        self.proc = subprocess.Popen(
            cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.lines: list[str] = []
        self.is_up = threading.Event()
        self.eof = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "ColabHive is up at" in line:
                self.is_up.set()
        self.eof.set()  # every process holding the pipe (up and all its children) is gone

    def output(self) -> str:
        return "".join(self.lines)[-6000:]

    def processes_with_config(self) -> list[int]:
        """Pids whose command line mentions this run's config file."""
        needle = str(self.config).encode()
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if needle in cmdline.read_bytes():
                    pids.append(int(cmdline.parent.name))
            except OSError:
                continue
        return pids

    def cleanup(self) -> None:
        for pid in self.processes_with_config():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def test_healthz_lists_what_is_not_served_on_a_gateway_with_no_node(make_hive: Any) -> None:
    h = make_hive()
    h.start_gateway()
    r = h.http.get("/healthz")
    assert r.status_code == 200, r.text  # liveness: 200 even with nothing served
    health = r.json()
    assert health["status"] == "ok" and health["nodes"] == 0 and health["ready"] == []
    unserved = {u["function"]: u for u in health["not_served"]}
    assert unserved["echo"] == {"function": "echo", "version": "echo@1.0.0", "state": "no_node",
                                "reason": "no node is connected to the hive"}
    assert set(unserved) == {f["name"] for f in h.get_json("/v1/fn")["functions"]}
    assert unserved["forecast-ensemble"]["state"] == "members", unserved["forecast-ensemble"]


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path)
    try:
        yield u
    finally:
        u.cleanup()


def test_up_serves_then_sigint_stops_everything(up: Up) -> None:
    assert up.is_up.wait(600), f"`colabhive up` never said it was up:\n{up.output()}"
    out = up.output()
    assert f"ColabHive is up at {up.url}" in out
    assert "minilm-embed" in out  # listed among the ready functions
    # one line per function as it became ready, then one for the whole catalog, all before the banner
    before, _, _ = "".join(up.lines).partition("ColabHive is up at")
    ready = re.findall(r"^ready: (\S+)@\S+ on (.+) \((\d+\.\d) s\)$", before, re.M)
    where = {n: w for n, w, _ in ready}
    assert "minilm-embed" in where and where["minilm-embed"] != "a node", before  # the node's name
    (total,) = re.findall(r"^all (\d+) functions served after \d+\.\d s$", before, re.M)
    assert int(total) == len(ready) == len({n for n, _, _ in ready}) > 1, before
    health = httpx.get(f"{up.url}/healthz", timeout=10).json()
    assert health["not_served"] == [] and len(health["ready"]) == int(total), health

    r = httpx.post(f"{up.url}/v1/fn/minilm-embed", json={"text": "hello"}, timeout=60)
    assert r.status_code == 200, r.text
    vec = r.json()["embedding"]
    assert len(vec) == 384 and all(isinstance(x, float) for x in vec)
    children = [p for p in up.processes_with_config() if p != up.proc.pid]
    assert len(children) >= 2, f"expected a gateway and a node, found pids {children}"

    t0 = time.monotonic()
    up.proc.send_signal(signal.SIGINT)
    rc = up.proc.wait(25)
    elapsed = time.monotonic() - t0
    assert rc == 0, up.output()
    assert elapsed < 20, f"`up` took {elapsed:.1f} s to stop after SIGINT:\n{up.output()}"
    assert up.eof.wait(5), "a child of `up` still holds its stdout"
    assert not port_open(up.port), "the gateway port still accepts connections"
    assert up.processes_with_config() == [], "processes with this config survive `up`"
    assert "colabhive: stopped" in up.output()
