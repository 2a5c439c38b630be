"""Energy per batch, from what the hardware plugin reports (``hive_device_stats``).

Where the plugin exposes a cumulative energy counter (RAPL, NVML), a batch's energy is
the counter's increase across the run. Otherwise it is the device's power × the run
time. Both are device-level: the energy of whatever the device did during the run (the
idle floor included), which is what the site's grid actually supplied. The result is
marked ``estimated`` whenever it is not a hardware counter (the CPU plugin's
utilisation × per-core figure, or power × time).

Reading the plugin costs ~0.15 ms on the CPU backend (it parses /proc). That is free next
to a 30 ms model call but would add a fifth to an echo round trip, and counters cannot
resolve runs that short anyway (CPU jiffies are 10 ms, NVML's counter updates more slowly
still). So a function whose recent runs were shorter than :data:`MIN_COUNTER_MS` gets
power × run time from the newest reading the heartbeat already took, at no extra cost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pluggy

from ..wire import Device, DeviceStats

__all__ = ["EnergyMeter", "MIN_COUNTER_MS", "Reading"]

MIN_COUNTER_MS = 10.0
"""Runs expected to be shorter than this are costed as power × time, not read around."""
ALPHA = 0.2


@dataclass(slots=True)
class Reading:
    device: Device
    key: str
    before: DeviceStats | None
    t0: float


class EnergyMeter:
    """Serialises plugin stats reads (the heartbeat, the worker and calibration share them:
    the CPU plugin's counters are not thread-safe) and turns them into energy per run."""

    def __init__(self, pm: pluggy.PluginManager, min_counter_ms: float = MIN_COUNTER_MS) -> None:
        self.pm = pm
        self.min_counter_ms = min_counter_ms
        self._lock = threading.Lock()
        self._latest: dict[str, DeviceStats] = {}
        self._typical_ms: dict[str, float] = {}

    def stats(self, device: Device) -> DeviceStats | None:
        """The plugin's live figures for ``device`` (None when it reports none)."""
        with self._lock:
            s = self.pm.hook.hive_device_stats(device=device)
        if s is not None:
            self._latest[device.id] = s
        return s

    def begin(self, device: Device, key: str) -> Reading:
        """Call just before a run of ``key`` (a function ref) on ``device``."""
        typical = self._typical_ms.get(key)
        before = self.stats(device) if typical is None or typical >= self.min_counter_ms else None
        return Reading(device, key, before, time.perf_counter())

    def end(self, r: Reading) -> tuple[float | None, bool]:
        """(joules, estimated) for the run since ``begin``; (None, False) when unknowable."""
        run_s = time.perf_counter() - r.t0
        old = self._typical_ms.get(r.key)
        ms = run_s * 1000
        self._typical_ms[r.key] = ms if old is None else (1 - ALPHA) * old + ALPHA * ms
        after = self.stats(r.device) if r.before is not None else self._latest.get(r.device.id)
        if after is None:
            return None, False
        b = r.before
        if b is not None and b.energy_j is not None and after.energy_j is not None and after.energy_j >= b.energy_j:
            return after.energy_j - b.energy_j, after.power_estimated or b.power_estimated
        if after.power_w is not None:
            return after.power_w * run_s, True
        return None, False
