"""The XPU backend: Intel GPUs (Arc, Data Center GPU Flex and Max) through ``torch.xpu``.

Devices come from ``torch.xpu.get_device_properties`` (:mod:`colabhive_xpu.discovery`),
which is reached only when sysfs shows an Intel GPU, so other nodes never import torch
here. Dtypes and capabilities follow the properties (:mod:`colabhive_xpu.rules`): bf16
and int8 only with XMX engines. Power is Level Zero's measured energy counter where it
can be read, else None (:mod:`colabhive_xpu.stats`); nothing is estimated.

Every hook answers None for a device of another kind, so the other backends' firstresult
hooks get their turn.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from colabhive import hookimpl
from colabhive.wire import Device, DeviceStats

from .discovery import KIND, discover, intel_gpu_present
from colabhive_accel import prepare
from .rules import pin_env
from .stats import Sampler

__all__ = [
    "KIND",
    "hive_device_env",
    "hive_device_stats",
    "hive_devices",
    "hive_place_model",
    "hive_release_memory",
    "hive_synchronize",
    "hive_torch_device",
]

log = logging.getLogger("colabhive.xpu")


def _torch() -> Any:
    """torch, imported only once a device of this kind may exist (tests hand in a fake)."""
    import torch

    return torch


_found: dict[int, Device] | None = None
_lock = threading.Lock()
_sampler = Sampler()


def _scan() -> dict[int, Device]:
    """Discover once per process; the heartbeat thread and the loader may ask at once."""
    global _found
    with _lock:
        if _found is None:
            devices: list[Device] = []
            if intel_gpu_present():
                try:
                    devices = discover(_torch(), os.environ)
                except Exception:  # a broken driver must not stop a node that has other devices
                    log.exception("XPU discovery failed: this node offers no XPU device")
            _found = {d.index: d for d in devices}
        return _found


def _own(device: Device) -> bool:
    return device.kind == KIND and device.index in _scan()


@hookimpl
def hive_devices() -> list[Device]:
    return list(_scan().values())


@hookimpl
def hive_torch_device(device: Device) -> str | None:
    return f"xpu:{device.index}" if device.kind == KIND else None


@hookimpl
def hive_place_model(model: Any, device: Device, dtype: str) -> Any | None:
    if device.kind != KIND:
        return None
    return prepare(model, f"xpu:{device.index}", dtype)


@hookimpl
def hive_synchronize(device: Device) -> bool | None:
    if device.kind != KIND:
        return None
    _torch().xpu.synchronize(device.index)
    return True


@hookimpl
def hive_release_memory(device: Device) -> bool | None:
    """Hand the blocks torch's caching allocator still holds for dropped models back to the
    device, so other processes (and the free memory reported) see them."""
    if device.kind != KIND:
        return None
    t = _torch()
    with t.xpu.device(device.index):
        t.xpu.empty_cache()
    return True


@hookimpl
def hive_device_stats(device: Device) -> DeviceStats | None:
    if not _own(device):
        return None
    return _sampler.sample(_torch(), device.index, device.id)


@hookimpl
def hive_device_env(device: Device) -> dict[str, str] | None:
    """Pin through ``ZE_AFFINITY_MASK``, Level Zero's CUDA_VISIBLE_DEVICES."""
    if device.kind != KIND:
        return None
    if not _own(device):
        raise ValueError(f"{device.id} is not an XPU device this process found")
    return pin_env(device.index, os.environ.get("ZE_AFFINITY_MASK"))
