"""The node's side channel: heartbeats, calibration, and following the gateway's placement.

Three threads use it (the poll loop, the heartbeat thread, the loader), over one
keep-alive connection serialised by a lock. Each heartbeat is timed, and the moving
average of those round trips goes out in the next one (``rtt_ms``: routing adds it to a
node's expected latency). A heartbeat reply may carry the gateway's desired set of models
(``hosting``) and an operator's request to calibrate; both are acted on here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgspec
import pluggy

from ..manifests import Manifest
from ..wire import Calibration, Device, Heartbeat, HeartbeatReply, Placement
from .cache import ModelCache
from .calibration_schedule import Calibrator
from .client import GatewayClient, GatewayError, GatewayUnreachable
from .energy import EnergyMeter

__all__ = ["Control", "RTT_ALPHA"]

log = logging.getLogger("colabhive.node")
RTT_ALPHA = 0.2
"""Weight of the newest heartbeat round trip in the moving average."""


class Control:
    def __init__(
        self,
        client: GatewayClient,
        devices: list[Device],
        wanted: list[str],
        pm: pluggy.PluginManager,
        threads: int,
        calibrate_on_join: bool,
        node_id: Callable[[], str | None],
        draining: Callable[[], bool],
    ) -> None:
        self.client = client
        self.devices = devices
        self.pm = pm
        self.node_id = node_id
        self.draining = draining
        self.cache = ModelCache(devices, wanted, release=self._release)
        self.meter = EnergyMeter(pm)
        self.calibrator = Calibrator(devices, threads, self._post_calibration, on_join=calibrate_on_join)
        self.rtt_ms: float | None = None
        self.catalog = 0
        """The gateway's catalog generation whose manifests this node holds."""
        self._lock = threading.Lock()

    # ---- placement -----------------------------------------------------------------------
    def ensure_loader(self) -> None:
        """Start the loader thread when there is something to load (or the join calibration
        to run first) and none is running."""
        if not (self.cache.pending() or self.calibrator.join_due()):
            return
        if self.cache.claim_loader():
            threading.Thread(target=self._load_loop, name="loader", daemon=True).start()

    def _load_loop(self) -> None:
        if self.calibrator.join_due():
            self.heartbeat()  # pending models show as loading while the devices are measured
            self.calibrator.run()
        self.cache.run(self.heartbeat)

    def apply_hosting(self, hosting: list[Placement] | None) -> bool:
        """Reconcile with the gateway's desired set (None: no instruction); True if it changed."""
        if hosting is None or not self.cache.set_desired(hosting):
            return False
        dropped = self.cache.unload(self.cache.extras())
        log.info("placement changed: %d models placed here, %d dropped", len(hosting), len(dropped))
        self.ensure_loader()
        return True

    def _release(self, device: Device) -> None:
        """Give a device the memory of dropped models back, through its plugin (if it has a way)."""
        try:
            self.pm.hook.hive_release_memory(device=device)
        except Exception:  # best effort: the models are already gone from the node's books
            log.exception("releasing memory on %s failed", device.id)

    # ---- talking to the gateway ------------------------------------------------------------
    def _post_calibration(self, cal: Calibration) -> bool:
        node_id = self.node_id()
        if node_id is None:
            return False
        with self._lock:
            try:
                self.client.request("POST", f"/v1/nodes/{node_id}/calibration", msgspec.json.encode(cal))
            except (GatewayUnreachable, GatewayError) as exc:
                log.warning("could not post the calibration: %s", exc)
                return False
        return True

    def heartbeat(self) -> None:
        node_id = self.node_id()
        if node_id is None:
            return
        loaded, loading = self.cache.names()
        stats = [s for d in self.devices if (s := self.meter.stats(d)) is not None]
        rtt = None if self.rtt_ms is None else round(self.rtt_ms, 3)
        dtypes, notes = self.cache.dtypes()
        hb = Heartbeat(functions=loaded, loading=loading, stats=stats, draining=self.draining(), rtt_ms=rtt,
                       catalog=self.catalog, dtypes=dtypes, dtype_notes=notes, adapters=self.cache.adapters())
        with self._lock:
            t0 = time.perf_counter()
            try:
                data = self.client.request("POST", f"/v1/nodes/{node_id}/heartbeat", msgspec.json.encode(hb))
            except (GatewayUnreachable, GatewayError) as exc:
                log.debug("heartbeat failed: %s", exc)
                return
            ms = (time.perf_counter() - t0) * 1000
        self.rtt_ms = ms if self.rtt_ms is None else (1 - RTT_ALPHA) * self.rtt_ms + RTT_ALPHA * ms
        try:
            reply = msgspec.json.decode(data, type=HeartbeatReply)
        except msgspec.MsgspecError as exc:
            log.warning("could not read the heartbeat reply: %s", exc)
            return
        if reply.manifests is not None:  # the catalog grew: a trained version may be placed here next
            self.cache.update_manifests([msgspec.json.decode(raw, type=Manifest) for raw in reply.manifests])
            self.catalog = reply.catalog
            self.ensure_loader()  # a placement that named a version unknown until now can load
        if reply.calibrate:
            self.calibrator.request()
        if self.apply_hosting(reply.hosting):
            self.heartbeat()  # tell the gateway what was dropped right away
