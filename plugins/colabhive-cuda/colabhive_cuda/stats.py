"""Live figures for one CUDA device, read from NVML on every heartbeat.

Each reading is taken on its own: a GPU that cannot report one figure (energy before
Volta, power on some laptop parts) still reports the others, and the missing one is None,
never a guess. NVML measures power and energy itself, so nothing here is an estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from colabhive.wire import DeviceStats

from .rules import MiB

__all__ = ["nvml_stats", "torch_stats"]

T = TypeVar("T")


def _read(nvml: Any, fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except nvml.NVMLError:
        return None


def nvml_stats(nvml: Any, handle: Any, device_id: str) -> DeviceStats:
    """Free memory, utilisation (0-1), power (W, NVML's average over about a second) and the
    energy counter (J since the driver loaded; nvmlDeviceGetTotalEnergyConsumption is in mJ)."""
    mem = _read(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    util = _read(nvml, lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    power_mw = _read(nvml, lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    energy_mj = _read(nvml, lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    return DeviceStats(
        device=device_id,
        free_memory_mb=int(mem.free) // MiB if mem is not None else None,
        utilisation=round(util.gpu / 100, 4) if util is not None else None,
        power_w=round(power_mw / 1000, 2) if power_mw is not None else None,
        energy_j=round(energy_mj / 1000, 3) if energy_mj is not None else None,
    )


def torch_stats(torch: Any, index: int, device_id: str) -> DeviceStats:
    """Free memory from CUDA itself, for a device NVML could not be matched to (CUDA has
    already started for it: this is the torch discovery path). The rest is unknown."""
    free, _total = torch.cuda.mem_get_info(index)
    return DeviceStats(device=device_id, free_memory_mb=int(free) // MiB)
