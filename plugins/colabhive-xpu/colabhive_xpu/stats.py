"""Live figures for one Intel GPU: free memory from torch, power from the card's energy counter.

Utilisation is left None: torch.xpu.utilization() samples for 150 ms by sleeping, which a
heartbeat must not do, and there is no cumulative counter for it to difference instead.
Power is measured, never estimated: Level Zero Sysman keeps a cumulative energy counter
(µJ), read through the optional ``pyzes`` bindings (``colabhive-xpu[sysman]``) and torch's
handle for the card's power domain; power is its rate between two heartbeats. Without
pyzes, or where the driver refuses (it may need privileges), power and energy are None.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

from colabhive.wire import DeviceStats

from .rules import MiB

__all__ = ["Sampler", "free_memory_mb", "read_energy"]

log = logging.getLogger("colabhive.xpu")


def free_memory_mb(torch: Any, index: int) -> int | None:
    """Free device memory across all processes; None where the driver cannot tell (Sysman off)."""
    try:
        free, _total = torch.xpu.mem_get_info(index)
    except (RuntimeError, AttributeError) as exc:
        log.debug("xpu:%d free memory unknown: %s", index, exc)
        return None
    return int(free) // MiB


def read_energy(torch: Any, index: int) -> tuple[float, float] | None:
    """(joules, seconds) from the card's Sysman energy counter, or None where it is unreadable."""
    power_handle = getattr(torch.xpu, "_get_zes_power_handle", None)
    if power_handle is None:  # a torch without Sysman support
        return None
    try:
        import pyzes  # type: ignore[import-not-found]

        handle = power_handle(index)
        counter = pyzes.zes_power_energy_counter_t()
        rc = pyzes.zesPowerGetEnergyCounter(handle, ctypes.byref(counter))
    except (ImportError, RuntimeError, OSError) as exc:
        log.debug("xpu:%d energy unknown: %s", index, exc)
        return None
    if rc != pyzes.ZE_RESULT_SUCCESS:
        return None
    return counter.energy / 1e6, counter.timestamp / 1e6  # µJ and µs, per the Sysman spec


class Sampler:
    """Turns the cumulative energy counter into watts between two calls, per device."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, float]] = {}
        self._no_energy: set[int] = set()
        """Devices whose counter could not be read once: not retried every heartbeat."""
        self._lock = threading.Lock()

    def sample(self, torch: Any, index: int, device_id: str) -> DeviceStats:
        energy = None if index in self._no_energy else read_energy(torch, index)
        power = None
        with self._lock:
            if energy is None:
                self._no_energy.add(index)
            else:
                last = self._last.get(index)
                if last is not None and energy[1] > last[1] and energy[0] >= last[0]:
                    power = round((energy[0] - last[0]) / (energy[1] - last[1]), 2)
                self._last[index] = energy
        return DeviceStats(
            device=device_id,
            free_memory_mb=free_memory_mb(torch, index),
            power_w=power,
            energy_j=round(energy[0], 3) if energy is not None else None,
        )
