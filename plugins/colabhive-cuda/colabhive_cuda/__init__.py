"""The CUDA backend: NVIDIA GPUs through ``torch.cuda``, described and measured by NVML.

Devices are listed from NVML without starting CUDA (see :mod:`colabhive_cuda.discovery`
for why and for the cases that fall back to torch), so a node on a machine without an
NVIDIA driver pays one failed ``dlopen`` of libnvidia-ml and imports neither pynvml nor
torch here.
Dtypes and capabilities follow the compute capability (:mod:`colabhive_cuda.rules`);
power and energy are NVML's own measurements, never estimates.

Every hook answers None for a device of another kind, so the other backends' firstresult
hooks get their turn.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from colabhive import hookimpl
from colabhive.wire import Device, DeviceStats

from .discovery import KIND, Found, discover
from colabhive_accel import prepare
from .stats import nvml_stats, torch_stats

__all__ = [
    "KIND",
    "hive_device_env",
    "hive_device_stats",
    "hive_devices",
    "hive_place_model",
    "hive_release_memory",
    "hive_synchronize",
    "hive_torch_device",
    "load_nvml",
]

log = logging.getLogger("colabhive.cuda")
NVML_LIBRARY = "libnvidia-ml.so.1"  # the name pynvml loads on Linux, installed with the driver


def load_nvml() -> Any | None:
    """The pynvml module, initialised; None where the NVIDIA driver's NVML cannot load.

    The driver's library is looked for first (a failed dlopen costs well under a
    millisecond) because importing pynvml itself takes about 15 ms, which every node
    without an NVIDIA GPU would otherwise pay at start.
    """
    if sys.platform == "linux":
        try:
            ctypes.CDLL(NVML_LIBRARY)
        except OSError:
            return None
    try:
        import pynvml
    except ImportError:
        log.warning("nvidia-ml-py is not installed: colabhive-cuda cannot see NVIDIA GPUs")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:  # e.g. the library is there but the kernel driver is not loaded
        log.warning("NVML is installed but does not start (%s): no CUDA devices", exc)
        return None
    return pynvml


def _torch() -> Any:
    """torch, imported only once a device of this kind may exist (tests hand in a fake)."""
    import torch

    return torch


@dataclass
class _State:
    nvml: Any
    found: dict[int, Found] = field(default_factory=dict)


_state: _State | None = None
_lock = threading.Lock()


def _scan() -> _State:
    """Discover once per process; the heartbeat thread and the loader may ask at once."""
    global _state
    with _lock:
        if _state is None:
            nvml = load_nvml()
            found: list[Found] = []
            if nvml is not None:
                try:
                    found = discover(nvml, _torch(), os.environ)
                except Exception:  # a broken driver must not stop a node that has other devices
                    log.exception("CUDA discovery failed: this node offers no CUDA device")
            _state = _State(nvml, {f.device.index: f for f in found})
        return _state


def _own(device: Device) -> Found | None:
    if device.kind != KIND:
        return None
    return _scan().found.get(device.index)


@hookimpl
def hive_devices() -> list[Device]:
    return [f.device for f in _scan().found.values()]


@hookimpl
def hive_torch_device(device: Device) -> str | None:
    return f"cuda:{device.index}" if device.kind == KIND else None


@hookimpl
def hive_place_model(model: Any, device: Device, dtype: str) -> Any | None:
    if device.kind != KIND:
        return None
    return prepare(model, f"cuda:{device.index}", dtype)


@hookimpl
def hive_synchronize(device: Device) -> bool | None:
    if device.kind != KIND:
        return None
    _torch().cuda.synchronize(device.index)
    return True


@hookimpl
def hive_release_memory(device: Device) -> bool | None:
    """Hand the blocks torch's caching allocator still holds for dropped models back to the
    device, so other processes (and NVML's free memory) see them."""
    if device.kind != KIND:
        return None
    t = _torch()
    with t.cuda.device(device.index):
        t.cuda.empty_cache()
    return True


@hookimpl
def hive_device_stats(device: Device) -> DeviceStats | None:
    found = _own(device)
    if found is None:
        return None
    state = _scan()
    if found.handle is not None and state.nvml is not None:
        return nvml_stats(state.nvml, found.handle, device.id)
    return torch_stats(_torch(), device.index, device.id)


@hookimpl
def hive_device_env(device: Device) -> dict[str, str] | None:
    """Pin by UUID: an index would depend on the child's CUDA_DEVICE_ORDER and its own
    CUDA_VISIBLE_DEVICES; a UUID names one GPU (or MIG instance) whatever they are."""
    if device.kind != KIND:
        return None
    found = _own(device)
    if found is None:
        raise ValueError(f"{device.id} is not a CUDA device this process found")
    return {"CUDA_VISIBLE_DEVICES": found.uuid}
