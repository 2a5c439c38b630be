"""When a node calibrates, and where the figures go.

Once when it first joins (in the loader thread, before any model loads, so the figures
describe an idle device and the models do not wait on a busy one), again whenever the
gateway relays an operator's request (``HeartbeatReply.calibrate``), and never twice at
once: a request during a run queues exactly one more. The latest figures are re-posted
after a re-registration, so a restarted gateway has them without a fresh measurement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..wire import Calibration, Device, DeviceCalibration

__all__ = ["Calibrator"]

log = logging.getLogger("colabhive.node")


def _in_subprocess(devices: list[Device], threads: int) -> list[DeviceCalibration]:
    # imported here: ``python -m colabhive.node.device_bench`` imports this package first, and
    # runpy warns when the module it is about to run is already in sys.modules
    from .device_bench import calibrate_in_subprocess

    return calibrate_in_subprocess(devices, threads)


class Calibrator:
    def __init__(
        self,
        devices: list[Device],
        threads: int,
        post: Callable[[Calibration], bool],
        on_join: bool = True,
        measure: Callable[[list[Device], int], list[DeviceCalibration]] = _in_subprocess,
    ) -> None:
        self.devices = devices
        self.threads = threads
        self.post = post
        """Sends figures to the gateway; False when it could not (they are re-sent later)."""
        self.measure = measure
        self.latest: list[DeviceCalibration] | None = None
        self._join_due = on_join
        self._busy = False
        self._again = False
        self._posted = False
        self._lock = threading.Lock()

    def join_due(self) -> bool:
        """True until the join calibration has been attempted (success or not: no retry loop)."""
        return self._join_due

    def run(self) -> None:
        """Measure (blocking: a few seconds per device) and post; repeats once if asked meanwhile."""
        with self._lock:
            self._join_due = False
            if self._busy:
                self._again = True
                return
            self._busy = True
        while True:
            try:
                figures = self.measure(self.devices, self.threads)
            except Exception as exc:  # a device that cannot be measured must not stop serving
                log.warning("calibration failed: %s", exc)
                figures = []
            if figures:
                self.latest = figures
                for f in figures:
                    log.info("calibrated %s: score %.3f (fp32 %.1f GFLOPS, %.1f GB/s, ref %s tokens/s) in %.1f s",
                             f.device, f.score, f.matmul_fp32_gflops, f.memory_gbs, f.ref_tokens_per_s, f.duration_s)
                self._posted = False
                self.repost()
            with self._lock:
                if not self._again:
                    self._busy = False
                    return
                self._again = False

    def request(self) -> None:
        """An operator asked (through the gateway): run in the background."""
        threading.Thread(target=self.run, name="calibrate", daemon=True).start()

    def repost(self, force: bool = False) -> None:
        """Send the latest figures if the gateway has not got them (``force``: it restarted)."""
        latest = self.latest
        if latest is None or (self._posted and not force):
            return
        self._posted = self.post(Calibration(devices=latest))
