"""The CPU backend: one device, the host's processors.

bf16 is offered only where the CPU has native support (AVX-512 BF16 or AMX), because
emulated bf16 is slower than fp32. Power comes from RAPL (``/sys/class/powercap``) when
the kernel lets us read it; otherwise it is estimated from utilisation and the CPU's
nominal TDP, and marked as an estimate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from colabhive import hookimpl
from colabhive.wire import Device, DeviceStats

__all__ = ["cpu_device", "cpu_dtypes", "hive_device_stats", "hive_devices", "hive_torch_device"]

KIND = "cpu"
ESTIMATED_W_PER_CORE = 10.0  # a server core at full load, roughly; used only when RAPL is unreadable
_RAPL = Path("/sys/class/powercap")


def _cpuinfo() -> tuple[str, set[str]]:
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not name:
                name = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return name or "cpu", flags


def _meminfo_mb(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


NATIVE = {"bf16": ("amx_bf16", "avx512_bf16"), "fp16": ("amx_fp16", "avx512_fp16")}
"""The CPU flags that make each low-precision dtype native (oneDNN runs it in hardware)."""


def cpu_dtypes(flags: set[str]) -> tuple[list[str], list[str]]:
    """The dtypes worth offering on a CPU with these flags (fp32 first, as every plugin), and why.

    Emulated bf16/fp16 (upcast to fp32 around every op) is slower than fp32 itself, so a
    dtype is offered only where one of its flags is present; the notes say which flag
    decided, so an operator reading /v1/nodes sees why a model runs in fp32.
    """
    dtypes, notes = [], []
    for dtype, needs in NATIVE.items():
        have = [f for f in needs if f in flags]
        if have:
            dtypes.append(dtype)
            notes.append(f"{dtype}: native ({', '.join(have)})")
        else:
            notes.append(f"{dtype}: not offered, the CPU has neither {' nor '.join(needs)} "
                         "(emulated it is slower than fp32)")
    return ["fp32", *dtypes], notes


def cpu_device() -> Device:
    name, flags = _cpuinfo()
    dtypes, notes = cpu_dtypes(flags)
    caps = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    return Device(
        kind=KIND,
        index=0,
        name=f"{name} ({os.cpu_count()} cores)",
        memory_mb=_meminfo_mb("MemTotal"),
        dtypes=dtypes,
        capabilities=caps,
        dtype_notes=notes,
    )


@hookimpl
def hive_devices() -> list[Device]:
    return [cpu_device()]


@hookimpl
def hive_torch_device(device: Device) -> str | None:
    return "cpu" if device.kind == KIND else None


def _rapl_energy_j() -> float | None:
    total, found = 0.0, False
    for zone in _RAPL.glob("intel-rapl:*"):
        if zone.name.count(":") != 1:  # package zones only; subzones are inside them
            continue
        try:
            total += int((zone / "energy_uj").read_text()) / 1e6
            found = True
        except (OSError, ValueError):
            return None
    return total if found else None


class _Sampler:
    """Turns cumulative counters (CPU jiffies, RAPL µJ) into rates between calls."""

    def __init__(self) -> None:
        self.last_t = time.monotonic()
        self.last_cpu = self._cpu()
        self.last_energy = _rapl_energy_j()
        self.energy_est = 0.0

    @staticmethod
    def _cpu() -> tuple[int, int]:
        try:
            parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
        return sum(parts) - idle, sum(parts)

    def sample(self) -> DeviceStats:
        now = time.monotonic()
        busy, total = self._cpu()
        dt = max(now - self.last_t, 1e-6)
        d_total = total - self.last_cpu[1]
        util = (busy - self.last_cpu[0]) / d_total if d_total > 0 else 0.0
        energy = _rapl_energy_j()
        if energy is not None and self.last_energy is not None and energy >= self.last_energy:
            power, estimated = (energy - self.last_energy) / dt, False
        else:
            power, estimated = util * ESTIMATED_W_PER_CORE * (os.cpu_count() or 1), True
            self.energy_est += power * dt
            energy = self.energy_est
        self.last_t, self.last_cpu, self.last_energy = now, (busy, total), _rapl_energy_j()
        return DeviceStats(
            device=f"{KIND}:0",
            free_memory_mb=_meminfo_mb("MemAvailable"),
            utilisation=round(util, 4),
            power_w=round(power, 2),
            energy_j=round(energy, 3),
            power_estimated=estimated,
        )


_sampler: _Sampler | None = None


@hookimpl
def hive_device_stats(device: Device) -> DeviceStats | None:
    global _sampler
    if device.kind != KIND:
        return None
    if _sampler is None:
        _sampler = _Sampler()
    return _sampler.sample()
