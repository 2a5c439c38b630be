"""The CPU backend a bare ``pip install colabhive`` gets: one CPU device, fp32, no power figures.

Registered by ``make_plugin_manager`` as a default plugin, like datasette's DEFAULT_PLUGINS,
so a node with no hardware package installed still has a device to serve on. The
``colabhive-cpu`` package is the full CPU backend (bf16 where AMX/AVX-512 BF16 allow it,
RAPL power); when it (or any plugin) lists a CPU device, this one steps aside:

- ``hive_devices`` is a wrapper: it sees what every other backend listed and adds its own
  CPU device only when none of them listed one, so there is never a second CPU device,
  whatever name the other plugin was registered under.
- the firstresult hooks are ``trylast``: another backend that answers for a CPU device
  answers first, and these only fill in when nothing else did.

Only what every platform can tell without reading /proc: fp32 alone (emulated bf16 is
slower than fp32, and without CPU flags we cannot tell native from emulated), the core
count and physical memory; utilisation and power are left unknown rather than guessed.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Generator

from .hookspecs import hookimpl
from .wire import Device, DeviceStats

__all__ = ["KIND", "NAME", "cpu_device", "hive_device_stats", "hive_devices", "hive_torch_device"]

KIND = "cpu"
NAME = "colabhive.default_cpu"
"""The name it is registered under (``pm.get_plugin(NAME)``)."""


def _sysconf_mb(pages: str) -> int | None:
    try:
        return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (AttributeError, ValueError, OSError):  # not POSIX, or this key unknown here
        return None


def cpu_device() -> Device:
    name = platform.processor() or platform.machine() or "cpu"
    return Device(kind=KIND, index=0, name=f"{name} ({os.cpu_count()} cores)",
                  memory_mb=_sysconf_mb("SC_PHYS_PAGES") or 0, dtypes=["fp32"])


@hookimpl(wrapper=True, trylast=True)
def hive_devices() -> Generator[None, list[list[Device]], list[list[Device]]]:
    listed = yield
    if not any(d.kind == KIND for group in listed for d in group):
        listed.append([cpu_device()])
    return listed


@hookimpl(trylast=True)
def hive_torch_device(device: Device) -> str | None:
    return "cpu" if device.kind == KIND else None


@hookimpl(trylast=True)
def hive_device_stats(device: Device) -> DeviceStats | None:
    if device.kind != KIND:
        return None
    return DeviceStats(device=f"{KIND}:{device.index}", free_memory_mb=_sysconf_mb("SC_AVPHYS_PAGES"))
