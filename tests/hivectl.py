"""Start real gateway and node processes on loopback for tests and benches.

Each hive gets a free port and its own state directory, so tests never collide with a
hive already running on the machine (or with each other).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"

__all__ = ["Hive", "free_port", "ROOT", "MANIFESTS"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


class Hive:
    """One hive in a temp dir: ``start_gateway()``, ``start_node()``, ``call()``, ``stop()``."""

    def __init__(self, tmp: Path, manifest_dirs: list[Path] | None = None, **sections: dict[str, Any]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        conf: dict[str, dict[str, Any]] = {
            "gateway": {"host": "127.0.0.1", "port": self.port},
            "node": {"heartbeat_s": 0.5, "poll_wait_ms": 5000, "torch_threads": 1},
            "telemetry": {"exporter": "jsonl", "path": str(tmp / "traces.jsonl")},
            "limits": {"node_timeout_s": 2.0},
        }
        for section, values in sections.items():
            conf.setdefault(section, {}).update(values)
        dirs = [str(d) for d in (manifest_dirs or [MANIFESTS])]
        lines = [f"state_dir = {_toml_value(str(tmp / 'var'))}", f"manifest_dirs = {_toml_value(dirs)}"]
        for section, values in conf.items():
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        self.config = tmp / "hive.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.gateway: subprocess.Popen[bytes] | None = None
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(base_url=self.url, timeout=60)

    # ---- processes ---------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "colabhive", *args],
            cwd=self.tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a kill of the group takes Granian's worker too
        )

    def start_gateway(self, wait: bool = True) -> None:
        self.gateway = self._spawn("gateway", "gateway", "--config", str(self.config))
        if wait:
            self.wait_for(lambda: self.get_json("/healthz") is not None, 30, "gateway start")

    def start_node(self, name: str = "node-a", *extra: str, wait_for: list[str] | None = None) -> None:
        self.nodes[name] = self._spawn(name, "node", "--config", str(self.config), "--name", name, *extra)
        if wait_for:
            self.wait_ready(wait_for, node=name)

    def wait_ready(self, functions: list[str], timeout: float = 120, node: str | None = None) -> None:
        def ready() -> bool:
            nodes = (self.get_json("/v1/nodes") or {}).get("nodes", [])
            for n in nodes:
                if (node is None or n["name"] == node) and set(functions) <= set(n["functions"]):
                    return True
            return False

        self.wait_for(ready, timeout, f"{functions} ready on {node or 'any node'}")

    def wait_for(self, cond, timeout: float, what: str) -> None:  # cond: () -> bool
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            for name, p in [("gateway", self.gateway), *self.nodes.items()]:
                if p is not None and p.poll() is not None and name in ("gateway",):
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}:\n{self.log(name)}")
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.all_logs()}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.gateway if name == "gateway" else self.nodes[name]
        assert p is not None
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            p.wait(30)

    def stop(self) -> None:
        for name in list(self.nodes):
            if self.nodes[name].poll() is None:
                self.kill(name, signal.SIGTERM)
        if self.gateway is not None and self.gateway.poll() is None:
            self.kill("gateway", signal.SIGTERM)
        self.http.close()

    # ---- HTTP --------------------------------------------------------------------------
    def get_json(self, path: str) -> Any:
        try:
            r = self.http.get(path, timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def post(self, path: str, body: bytes | str | dict[str, Any], **headers: str) -> httpx.Response:
        if isinstance(body, dict):
            return self.http.post(path, json=body, headers=headers)
        return self.http.post(path, content=body, headers=headers)

    # ---- evidence ------------------------------------------------------------------------
    def log(self, name: str) -> str:
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs.glob("*.log"))

    def spans(self) -> list[dict[str, Any]]:
        out = []
        for f in self.tmp.glob("traces.*.jsonl"):
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return out
