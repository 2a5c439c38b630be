"""The hookspecs: everything the core asks of a plugin.

A backend (CPU, CUDA, XPU, or a third party's) is a package registering these under the
entry-point group ``colabhive``. The core never branches on a device kind; it asks
these hooks. ``firstresult`` hooks return None for devices that are not the backend's.
A plugin may also add task families (``hive_task_families``); the core never branches on
a task name either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from .wire import Device, DeviceStats

if TYPE_CHECKING:
    from .families.base import TaskFamily

__all__ = ["hookspec", "hookimpl", "PROJECT"]

PROJECT = "colabhive"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def hive_devices() -> list[Device]:
    """List the devices this backend can drive (kind, name, memory, dtypes, capabilities)."""


@hookspec(firstresult=True)
def hive_device_env(device: Device) -> dict[str, str] | None:
    """Environment variables that pin a worker process to ``device``."""


@hookspec(firstresult=True)
def hive_torch_device(device: Device) -> str | None:
    """The torch device string for ``device`` (e.g. "cpu", "cuda:1")."""


@hookspec(firstresult=True)
def hive_place_model(model: Any, device: Device, dtype: str) -> Any | None:
    """Move a loaded torch module onto ``device`` in ``dtype`` and return it."""


@hookspec(firstresult=True)
def hive_synchronize(device: Device) -> bool | None:
    """Wait for queued device work to finish, so timings measure the work itself."""


@hookspec(firstresult=True)
def hive_device_stats(device: Device) -> DeviceStats | None:
    """Live figures: free memory, utilisation, power in watts and energy in joules where readable."""


@hookspec(firstresult=True)
def hive_release_memory(device: Device) -> bool | None:
    """Return memory freed by dropped models to ``device`` (e.g. ``torch.cuda.empty_cache()``).

    Called after a node unloads models placed on ``device`` and has run ``gc.collect()``.
    Optional: a backend whose freed memory goes back by itself (the CPU) need not implement it.
    """


@hookspec
def hive_task_families() -> list[TaskFamily]:
    """Task families this plugin adds (runner, ensemble rules, /auto payload, metrics, routes)."""


@hookspec
def hive_training_methods() -> list[Any]:
    """Training methods this plugin adds: subclasses of ``colabhive.training.methods.Method``
    (its name, hyperparameter Struct, trainer, column roles, base tasks, metrics). A job spec's
    ``method`` names one; the built-ins (lora, head, forecast, tabular) answer last."""
