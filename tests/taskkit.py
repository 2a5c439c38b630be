"""Helpers for the async-task tests: a hive with echo-only nodes, submitting, reading tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from hivectl import HiveProcess

__all__ = ["ASYNC", "ECHO_NODE", "make", "node_record", "submit", "submit_ok", "task"]

ASYNC = {"Prefer": "respond-async"}
ECHO_NODE = ("--functions", "echo")


def make(tmp: Path, **limits: Any) -> HiveProcess:
    # a long node timeout by default, so a busy machine never makes a live node look dead;
    # the tests about dead nodes pass a short one
    return HiveProcess(tmp, limits={"node_timeout_s": 10.0, **limits}, node={"torch_threads": 0})



def submit(h: HiveProcess, text: str, fn: str = "echo", **headers: str) -> httpx.Response:
    return h.http.post(f"/v1/fn/{fn}", json={"text": text}, headers={**ASYNC, **headers}, timeout=30)


def submit_ok(h: HiveProcess, text: str, **headers: str) -> str:
    r = submit(h, text, **headers)
    assert r.status_code == 202, (r.status_code, r.text)
    return r.json()["id"]


def task(h: HiveProcess, tid: str) -> dict[str, Any]:
    r = h.http.get(f"/v1/tasks/{tid}", timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def node_record(h: HiveProcess, name: str) -> dict[str, Any] | None:
    for n in (h.get_json("/v1/nodes") or {}).get("nodes", []):
        if n["name"] == name:
            return n
    return None
