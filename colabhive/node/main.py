"""The node runtime: register, load what it is placed (or what fits), long-poll for work,
run it, post results.

Nodes only make outbound calls. A lost gateway is retried with capped exponential
backoff; a gateway that forgot the node (it restarted) is answered by registering again.
SIGTERM/SIGINT stop polling, finish the batch in hand, post its results and leave.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading

import msgspec

from .. import __version__
from ..config import HiveConfig
from ..errors import ConfigError, NodeStopping
from ..manifests import Manifest
from ..plugins import get_plugin_manager
from ..telemetry import setup_tracing
from ..wire import Chunk, Device, PollReply, PollRequest, RegisterReply, RegisterRequest, TaskResult
from .client import GatewayClient, GatewayError, GatewayUnreachable
from .artifacts import ArtifactCache
from .control import Control
from .trainer import JobRunner
from .worker import run_batch

__all__ = ["Node"]

log = logging.getLogger("colabhive.node")


def _with_dtypes(d: Device, dtypes: list[str]) -> Device:
    """The operator's ``node.dtypes`` in place of the plugin's, said so in the notes."""
    note = f"node.dtypes sets {', '.join(dtypes)} (the plugin offered {', '.join(d.dtypes)})"
    return msgspec.structs.replace(d, dtypes=list(dtypes), dtype_notes=[*d.dtype_notes, note])


class Node:
    def __init__(
        self, cfg: HiveConfig, gateway: str | None = None, name: str | None = None, calibrate: bool = True
    ) -> None:
        self.cfg = cfg
        self.url = (gateway or cfg.node_gateway_url).rstrip("/")
        self.name = name or cfg.node.name or f"{socket.gethostname()}-{os.getpid()}"
        self.pm = get_plugin_manager()
        self.devices: list[Device] = [d for group in self.pm.hook.hive_devices() for d in group]
        if not self.devices:
            raise RuntimeError("no hardware plugin reported a device; install colabhive-cpu (make install)")
        if cfg.node.dtypes:
            self.devices = [_with_dtypes(d, cfg.node.dtypes) for d in self.devices]
        self.tracer = setup_tracing(cfg, "node")
        wait_s = cfg.node.poll_wait_ms / 1000
        self.join_token = os.environ.get("COLABHIVE_JOIN_TOKEN") or cfg.node.join_token
        self.client = GatewayClient(self.url, timeout_s=wait_s + 30)
        self.chunk_client = GatewayClient(self.url, timeout_s=10)
        """Streamed output goes out on its own connection while the batch runs."""
        self.node_id: str | None = None
        self.pending: list[TaskResult] = []
        self.stopping = threading.Event()
        self.control = Control(
            GatewayClient(self.url, timeout_s=10), self.devices, cfg.node.functions, self.pm,
            cfg.node.torch_threads, calibrate, lambda: self.node_id, self.stopping.is_set,
        )
        """Heartbeats, calibration and placement, on their own connection."""
        self.cache = self.control.cache
        self.secret: str | None = None
        # the node's own files, apart from the gateway's and other nodes' (they may share state_dir)
        state = cfg.resolve(cfg.state_dir) / "node-cache" / self.name
        self.artifacts = ArtifactCache(state / "artifacts", self.url, self._credentials)
        self.cache.resolve = self.artifacts.resolve
        self.jobs = JobRunner(self.url, state, self.devices, self.pm, self._credentials,
                              lambda: dict(self.cache.manifests), self.stopping, self.artifacts.resolve)
        """Training: leases jobs that fit this node's devices, on a connection of its own."""
        self.jobs.meter = self.control.meter
        self._in_wait = False
        self.batches = 0

    # ---- lifecycle ---------------------------------------------------------------------
    def run(self) -> None:
        self._install_signals()
        hb = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        hb.start()
        self.jobs.start()
        try:
            self._register_until_done()
            while not self.stopping.is_set():
                try:
                    self._poll_once()
                except GatewayError as exc:
                    if exc.remote_code == "unknown_node":
                        log.warning("gateway forgot this node (%s); registering again", exc.remote_message)
                        self.node_id = None
                        self._register_until_done()
                    else:
                        # the gateway rejected what we sent: resending it would loop forever;
                        # the tasks' leases run out and the gateway requeues them
                        log.error("gateway refused a poll (%d results dropped): %s", len(self.pending), exc)
                        self.pending = []
                        self._sleep(1.0)
                except GatewayUnreachable as exc:
                    log.warning("gateway unreachable (%s); retrying", exc)
                    self._backoff_until(self._ping)
        except NodeStopping:
            pass
        finally:
            self._in_wait = False
            self._leave()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, _frame: object) -> None:
            log.info("signal %d: finishing the batch in hand, then leaving", signum)
            self.stopping.set()
            if self._in_wait:
                raise NodeStopping

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _sleep(self, s: float) -> None:
        if self.stopping.wait(s):
            raise NodeStopping

    def _backoff_until(self, attempt) -> None:  # attempt: () -> bool
        delay = 0.1
        while not attempt():
            self._sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    def _ping(self) -> bool:
        try:
            self.client.request("GET", "/healthz")
            return True
        except (GatewayUnreachable, GatewayError):
            return False

    def _credentials(self) -> tuple[str, str] | None:
        return (self.node_id, self.secret) if self.node_id and self.secret else None

    # ---- registration and loading ----------------------------------------------------
    def _register_until_done(self) -> None:
        self._backoff_until(self._register)

    def _register(self) -> bool:
        req = RegisterRequest(
            name=self.name,
            site=self.cfg.node.site,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            devices=self.devices,
            allowed=list(self.cfg.node.functions),
        )
        self.client.set_token(self.join_token)
        try:
            data = self.client.request("POST", "/v1/nodes/register", msgspec.json.encode(req))
        except GatewayUnreachable as exc:
            log.info("waiting for the gateway at %s (%s)", self.url, exc)
            return False
        except GatewayError as exc:
            if exc.http_status == 422:  # this node's own settings (e.g. an unknown site): retrying cannot help
                raise ConfigError(f"the gateway at {self.url} refused this node: {exc.remote_message}") from exc
            log.error("registration refused: %s", exc)
            return False
        reply = msgspec.json.decode(data, type=RegisterReply)
        self.client.set_token(reply.node_secret)
        self.control.client.set_token(reply.node_secret)
        self.chunk_client.set_token(reply.node_secret)
        self.node_id = reply.node_id
        self.secret = reply.node_secret
        self.control.catalog = reply.catalog
        manifests = [msgspec.json.decode(raw, type=Manifest) for raw in reply.manifests]
        log.info("registered with %s as %s (%d devices)", self.url, self.node_id, len(self.devices))
        self.cache.set_manifests(manifests, reply.hosting)
        self.cache.unload(self.cache.extras())
        self.control.ensure_loader()
        self.control.heartbeat()
        self.control.calibrator.repost(force=True)  # a restarted gateway has lost them
        return True

    # ---- the poll loop ---------------------------------------------------------------
    def _poll_once(self) -> None:
        loaded, _ = self.cache.names()
        if not loaded and not self.pending:
            # nothing to serve yet: wait here for the loader (heartbeats keep us alive meanwhile)
            self.cache.changed.wait(1.0)
            self.cache.changed.clear()
            return
        req = PollRequest(
            functions=loaded, max_items=self.cfg.node.max_items, wait_ms=self.cfg.node.poll_wait_ms,
            results=self.pending,
        )
        body = msgspec.json.encode(req)
        self._in_wait = True
        try:
            if self.stopping.is_set():
                raise NodeStopping
            data = self.client.request("POST", f"/v1/nodes/{self.node_id}/poll", body)
        finally:
            self._in_wait = False
        self.pending = []
        reply = msgspec.json.decode(data, type=PollReply)
        if reply.tasks:
            self.pending = run_batch(
                reply.tasks, self.cache, self.tracer, self.name, self._post_chunk, self.control.meter
            )
            self.batches += 1
        if self.control.apply_hosting(reply.hosting):
            self.control.heartbeat()

    def _post_chunk(self, task_id: str, seq: int, text: str) -> bool:
        """Send one piece of streamed output; a failed post is logged, not fatal (the full
        output still arrives with the result)."""
        body = msgspec.json.encode(Chunk(seq=seq, text=text))
        try:
            data = self.chunk_client.request("POST", f"/v1/nodes/{self.node_id}/tasks/{task_id}/chunks", body)
        except (GatewayUnreachable, GatewayError) as exc:
            log.warning("could not post a chunk of %s: %s", task_id, exc)
            return True
        return bool(msgspec.json.decode(data).get("accepted", True))

    def _leave(self) -> None:
        if self.node_id is None:
            return
        try:
            if self.pending:
                body = msgspec.json.encode(PollRequest(results=self.pending, max_items=0, wait_ms=0))
                self.client.request("POST", f"/v1/nodes/{self.node_id}/results", body)
                self.pending = []
            self.client.request("DELETE", f"/v1/nodes/{self.node_id}")
            log.info("left the hive")
        except GatewayError as exc:
            if exc.remote_code == "unknown_node":  # it saw our poll connection close and let us go already
                log.info("left the hive")
            else:
                log.warning("could not say goodbye to the gateway: %s", exc)
        except GatewayUnreachable as exc:
            log.warning("could not say goodbye to the gateway: %s", exc)

    # ---- heartbeats ------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(self.cfg.node.heartbeat_s):
            self.control.heartbeat()
