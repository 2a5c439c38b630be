"""Finding the Intel GPUs torch can drive.

There is no NVML for Intel GPUs in a pure-Python package, so the devices come from
``torch.xpu`` itself, which starts the SYCL runtime. To keep that cost off every node
that has no Intel GPU, sysfs is read first (a few file reads): torch is imported only when
an Intel display device is present (or on WSL, where sysfs does not show GPUs). There, the
import is not an extra cost so much as an earlier one: the node needs torch for its first
model anyway.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from colabhive.wire import Device

from .rules import MiB, capabilities_for, dtypes_for

__all__ = ["KIND", "discover", "intel_gpu_present"]

log = logging.getLogger("colabhive.xpu")
KIND = "xpu"
INTEL_PCI_VENDOR = "0x8086"


def intel_gpu_present(drm: Path = Path("/sys/class/drm"), wsl_gpu: Path = Path("/dev/dxg")) -> bool:
    """Whether this machine may have an Intel GPU (cheap: no driver is loaded to tell)."""
    if wsl_gpu.exists():
        return True
    for vendor in drm.glob("card*/device/vendor"):
        try:
            if vendor.read_text().strip().lower() == INTEL_PCI_VENDOR:
                return True
        except OSError:
            continue
    return False


def discover(torch: Any, environ: MutableMapping[str, str]) -> list[Device]:
    """One Device per XPU torch sees (``ZE_AFFINITY_MASK`` already applied by Level Zero).

    ``ZES_ENABLE_SYSMAN=1`` is set first, unless the operator chose otherwise, because the
    free-memory query behind ``torch.xpu.mem_get_info`` needs Sysman enabled when the
    driver starts.
    """
    xpu = getattr(torch, "xpu", None)
    if xpu is None:
        return []
    if not xpu.is_initialized():
        environ.setdefault("ZES_ENABLE_SYSMAN", "1")
    if not xpu.is_available():
        log.info("an Intel GPU may be present but torch %s cannot use it (no XPU build or driver)", torch.__version__)
        return []
    devices = []
    for i in range(xpu.device_count()):
        p = xpu.get_device_properties(i)
        devices.append(
            Device(
                kind=KIND,
                index=i,
                name=str(p.name),
                memory_mb=int(p.total_memory) // MiB,
                dtypes=dtypes_for(p),
                capabilities=capabilities_for(p),
            )
        )
    return devices
