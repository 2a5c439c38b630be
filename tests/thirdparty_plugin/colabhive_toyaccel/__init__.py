"""ToyAccel: a device kind of its own that computes on the host CPU through torch "cpu".

It exists to show (and test) everything a hardware plugin needs: a distinct kind that
manifests can ask for in ``hardware.device_kinds``, its own name and memory budget, the
torch device that drives it, and honest live figures. It implements no
``hive_place_model``: the core's fallback moves the model to the torch device this plugin
names, in the chosen dtype, which is all a plain device needs.

It also adds a task family the core does not have (``textstats``, in :mod:`.textstats`)
through ``hive_task_families``, so the same entry point shows a plugin adding a task.
"""

from __future__ import annotations

from colabhive import hookimpl
from colabhive.families import TaskFamily
from colabhive.wire import Device, DeviceStats

from .textstats import TextStats

__all__ = ["KIND", "hive_device_stats", "hive_devices", "hive_synchronize", "hive_task_families", "hive_torch_device"]

KIND = "toyaccel"
MEMORY_MB = 2048
"""The budget the toy advertises, so placement can fit models to it like real memory."""


@hookimpl
def hive_devices() -> list[Device]:
    return [
        Device(
            kind=KIND,
            index=0,
            name="ToyAccel T1 (computes on the host CPU)",
            memory_mb=MEMORY_MB,
            dtypes=["fp32"],
            capabilities=["toy"],
        )
    ]


@hookimpl
def hive_torch_device(device: Device) -> str | None:
    return "cpu" if device.kind == KIND else None


@hookimpl
def hive_synchronize(device: Device) -> bool | None:
    """CPU work is finished when the call returns: nothing to wait for, but it is ours to say."""
    return True if device.kind == KIND else None


@hookimpl
def hive_device_stats(device: Device) -> DeviceStats | None:
    """The toy has no sensors: every figure is None ("cannot tell"), never a made-up number."""
    if device.kind != KIND:
        return None
    return DeviceStats(device=device.id)


@hookimpl
def hive_task_families() -> list[TaskFamily]:
    return [TextStats()]
