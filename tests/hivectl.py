"""Start real gateway and node processes on loopback for tests and benches.

Each hive gets a free port and its own state directory, so tests never collide with a
hive already running on the machine (or with each other).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = Path(os.environ.get("COLABHIVE_TEST_MANIFESTS", ROOT / "manifests"))

__all__ = [
    "HiveProcess",
    "alive",
    "descendants",
    "free_port",
    "group_members",
    "port_open",
    "write_config",
    "ROOT",
    "MANIFESTS",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, ppid, pgrp) for every process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # state ppid pgrp ...
        table[int(stat.parent.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return [pid for pid, (state, _, pgrp) in _proc_table().items() if pgrp == pgid and state != "Z"]


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (children in other sessions too, e.g. the gateway's server)."""
    table = _proc_table()
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (state, ppid, _) in table.items() if ppid == parent and state != "Z"]
        out += kids
        frontier += kids
    return out


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` with a thread still running: a leader shows as a zombie while its
    other threads (which still hold its sockets) are exiting, so every thread is checked."""
    out = []
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            if text[text.rfind(")") + 2] not in "ZX":
                out.append(pid)
                break
    return out


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


def write_config(path: Path, top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> Path:
    """Write a hive.toml from top-level keys and ``{section: {key: value}}``."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class HiveProcess:
    """One hive's gateway and node processes in a temp dir: ``start_gateway()``, ``start_node()``, ``post()``,
    ``stop()`` (not ``colabhive.gateway.hive.Hive``, the gateway's in-process state)."""

    def __init__(
        self,
        tmp: Path,
        manifest_dirs: list[Path] | None = None,
        *,
        site_dirs: list[Path] | None = None,
        auto_router: Path | None = None,
        **sections: dict[str, Any],
    ) -> None:
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
        top: dict[str, Any] = {"state_dir": str(tmp / "var"), "manifest_dirs": dirs,
                               "auto_router": str(auto_router or ROOT / "models" / "auto-router")}
        if site_dirs is not None:  # default: <tmp>/nodes, absent, so any site name is accepted
            top["site_dirs"] = [str(d) for d in site_dirs]
        self.config = write_config(tmp / "hive.toml", top, conf)
        self.gateway: subprocess.Popen[bytes] | None = None
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self._killed: set[int] = set()  # pids the test stopped on purpose
        self.http = httpx.Client(base_url=self.url, timeout=60)
        self.admin_headers: dict[str, str] = {}
        """Sent by get_json (and so by the wait helpers): an API key when the hive requires one."""

    # ---- processes ---------------------------------------------------------------------
    def _spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None, netns: str | None = None
    ) -> subprocess.Popen[bytes]:
        """``env``: extra variables for this process only (e.g. PYTHONPATH for a plugin);
        ``netns``: run it inside that network namespace (a site of its own)."""
        offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env = {**os.environ, **offline, **(env or {})}
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        prefix = ["ip", "netns", "exec", netns] if netns else []
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "colabhive", *args],
            cwd=self.tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a kill of the group takes Granian's worker too
        )

    def _proc(self, name: str) -> subprocess.Popen[bytes] | None:
        return self.gateway if name == "gateway" else self.nodes.get(name)

    def start_gateway(self, wait: bool = True) -> None:
        self.gateway = self._spawn("gateway", "gateway", "--config", str(self.config))
        if wait:
            self.wait_for(lambda: self.get_json("/healthz") is not None, 30, "gateway start")

    def start_node(
        self,
        name: str = "node-a",
        *extra: str,
        wait_for: list[str] | None = None,
        env: dict[str, str] | None = None,
        calibrate: bool = False,
        netns: str | None = None,
    ) -> None:
        """``calibrate``: measure the devices at join (several seconds here, so tests opt in)."""
        flags = () if calibrate else ("--no-calibrate",)
        self.nodes[name] = self._spawn(
            name, "node", "--config", str(self.config), "--name", name, *flags, *extra, env=env, netns=netns
        )
        if wait_for:
            self.wait_ready(wait_for, node=name)

    def node_names(self) -> list[str]:
        """Names of the nodes the gateway lists as live right now."""
        return [n["name"] for n in (self.get_json("/v1/nodes") or {}).get("nodes", [])]

    def wait_ready(self, functions: list[str], timeout: float = 120, node: str | None = None) -> None:
        def ready() -> bool:
            nodes = (self.get_json("/v1/nodes") or {}).get("nodes", [])
            for n in nodes:
                # nodes list versioned refs (name@version); a plain name matches any version
                held = set(n["functions"]) | {f.split("@")[0] for f in n["functions"]}
                if (node is None or n["name"] == node) and set(functions) <= held:
                    return True
            return False

        watch = ["gateway"] + ([node] if node else [])
        self.wait_for(ready, timeout, f"{functions} ready on {node or 'any node'}", watch=watch)

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str, watch: list[str] | None = None) -> None:
        """Poll ``cond`` every 0.1 s; fail early when a watched process dies unasked."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            for name in watch if watch is not None else ["gateway"]:
                p = self._proc(name)
                if p is not None and p.pid not in self._killed and p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}:\n{self.all_logs()}")
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.all_logs()}")

    def send(self, name: str, sig: int) -> None:
        """Send ``sig`` to the process alone (not its group), as a supervisor would."""
        p = self._proc(name)
        assert p is not None, name
        self._killed.add(p.pid)
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(sig)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process group of ``name`` and, for fatal signals, reap it."""
        p = self._proc(name)
        assert p is not None, name
        self._killed.add(p.pid)
        tree = descendants(p.pid) + group_members(p.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            p.wait(30)
            # and everything it started: its group, and children in sessions of their own
            # (the gateway's server process, which dies with its parent)
            end = time.monotonic() + 15
            while alive(tree) and time.monotonic() < end:
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop everything: SIGTERM, then SIGKILL of each group. Never raises."""
        procs = [p for p in [*self.nodes.values(), self.gateway] if p is not None]
        tree = [pid for p in procs if p.poll() is None for pid in descendants(p.pid)]
        for p in procs:  # nodes first, so they can still say goodbye
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        end = time.monotonic() + 15
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
        for p in procs:  # stragglers, and children left in the group (Granian's worker)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        for pid in alive(tree):  # a child in its own session that outlived its parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.http.close()
        for f in self._log_files:
            f.close()

    # ---- HTTP --------------------------------------------------------------------------
    def get_json(self, path: str) -> Any:
        try:
            r = self.http.get(path, timeout=2, headers=self.admin_headers)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def post(self, path: str, body: bytes | str | dict[str, Any], **headers: str) -> httpx.Response:
        if isinstance(body, dict):
            return self.http.post(path, json=body, headers=headers)
        return self.http.post(path, content=body, headers=headers)

    def call(self, fn: str, timeout: float = 60, **inputs: Any) -> httpx.Response:
        """POST /v1/fn/<fn> with ``inputs`` as the JSON body."""
        return self.http.post(f"/v1/fn/{fn}", json=inputs, timeout=timeout)

    # ---- evidence ------------------------------------------------------------------------
    def log(self, name: str) -> str:
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )

    def spans(self) -> list[dict[str, Any]]:
        """Every span flushed so far by any process (a half-written last line is skipped)."""
        out = []
        for f in sorted(self.tmp.glob("traces.*.jsonl")):
            for line in f.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def wait_for_spans(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60,
        what: str = "the spans asserted on",
        trace_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Poll the span sink until ``predicate`` holds on the spans flushed so far (only those of
        ``trace_id`` when given) and return that snapshot, so a test asserts on exactly what it
        waited for. Each process exports on its own (batched), so a test must wait for every span
        it asserts on, not just the first process's; on timeout the spans seen are in the error."""
        seen: list[dict[str, Any]] = []

        def holds() -> bool:
            nonlocal seen
            seen = [s for s in self.spans() if trace_id is None or s["trace_id"] == trace_id]
            return predicate(seen)

        try:
            self.wait_for(holds, timeout, what)
        except TimeoutError as exc:
            names = sorted((s.get("service", "?"), s["name"]) for s in seen)
            raise TimeoutError(f"spans {'of ' + trace_id if trace_id else 'seen'}: {names}\n{exc}") from None
        return seen


def ok(r: httpx.Response) -> Any:
    """The JSON of a 200 response; any other status fails with the body in the message."""
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def post_all(h: HiveProcess, fn: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body to ``/v1/fn/<fn>`` at once (so the node sees them as one batch)."""

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=h.url, timeout=120) as c:
            return await asyncio.gather(*(c.post(f"/v1/fn/{fn}", json=b) for b in bodies))

    return asyncio.run(go())
