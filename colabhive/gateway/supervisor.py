"""Running the gateway: Granian in a child process, supervised so SIGTERM drains first.

Granian stops serving the moment it gets a signal, which would cut off the nodes that are
about to deliver in-flight results; so Granian runs in its own session, only the
supervisor receives the signal, asks the app to drain, waits, and then stops Granian.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from ..config import HiveConfig, config_to_json

__all__ = ["die_with_parent", "drain", "serve_granian", "stop_process"]


def serve_granian(cfg: HiveConfig, log_level: str) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    os.environ["COLABHIVE_CONFIG_JSON"] = config_to_json(cfg).decode()
    os.environ.setdefault("COLABHIVE_LOG_LEVEL", log_level)
    Granian(
        "colabhive.gateway.app:from_env",
        factory=True,
        address=cfg.gateway.host,
        port=cfg.gateway.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        websockets=False,
        # one worker owns the hive's queues; a single-threaded runtime and plain HTTP/1.1
        # cut the cross-thread hand-offs that dominate latency at low concurrency
        runtime_mode=RuntimeModes.st,
        http=HTTPModes.http1,
        log_level=log_level.lower(),  # type: ignore[arg-type]
        backlog=2048,
    ).serve()


def die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def drain(url: str, secret: str, grace_s: float) -> None:
    """Ask the gateway to refuse new calls, then wait for in-flight sync calls (up to grace_s)."""
    headers = {"X-Hive-Admin": secret}
    try:
        req = urllib.request.Request(url + "/v1/admin/drain", data=b"", headers=headers, method="POST")
        urllib.request.urlopen(req, timeout=5).read()
    except (urllib.error.URLError, OSError):
        return  # not up (or already gone): nothing to drain
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url + "/v1/admin/drain", headers=headers)
            status = json.loads(urllib.request.urlopen(req, timeout=5).read())
        except (urllib.error.URLError, OSError, ValueError):
            return
        if status["sync_in_flight"] == 0:
            return
        time.sleep(0.1)
    logging.getLogger("colabhive.gateway").warning("grace period over with sync calls still in flight")


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
