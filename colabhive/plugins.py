"""The plugin manager: entry points first, then ``check_pending`` so a misspelt hookimpl
fails at start instead of silently never being called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from . import default_cpu, hookspecs
from .hookspecs import PROJECT, hookimpl
from .wire import Device

__all__ = ["DTYPES", "collect_named", "get_plugin_manager", "make_plugin_manager", "place_model", "torch_dtype"]

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, DTYPES.get(name, "float32"))


class DefaultPlacement:
    """Fallbacks every backend gets unless it overrides them (registered trylast)."""

    @hookimpl(trylast=True)
    def hive_place_model(self, model: Any, device: Device, dtype: str) -> Any | None:
        target = _pm().hook.hive_torch_device(device=device)
        if target is None:
            return None
        return model.to(device=target, dtype=torch_dtype(dtype))

    @hookimpl(trylast=True)
    def hive_device_env(self, device: Device) -> dict[str, str] | None:
        return {}


def make_plugin_manager(*extra: object, entry_points: bool = True) -> pluggy.PluginManager:
    from .families.builtin import BuiltinFamilies  # the families import runners, which import this module
    from .training.methods.builtin import BuiltinMethods

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(DefaultPlacement(), name="colabhive.defaults")
    pm.register(default_cpu, name=default_cpu.NAME)  # steps aside for a CPU backend package
    pm.register(BuiltinFamilies(), name="colabhive.families")
    pm.register(BuiltinMethods(), name="colabhive.training_methods")
    if entry_points:
        pm.load_setuptools_entrypoints(PROJECT)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


_current: pluggy.PluginManager | None = None


def _pm() -> pluggy.PluginManager:
    return get_plugin_manager()


def get_plugin_manager() -> pluggy.PluginManager:
    global _current
    if _current is None:
        _current = make_plugin_manager()
    return _current


def set_plugin_manager(pm: pluggy.PluginManager) -> None:
    global _current
    _current = pm


def place_model(model: Any, device: Device, dtype: str) -> Any:
    placed = get_plugin_manager().hook.hive_place_model(model=model, device=device, dtype=dtype)
    if placed is None:
        raise RuntimeError(f"no hardware plugin can place a model on {device.id} ({device.name})")
    return placed




_COLLECTED: dict[str, tuple[tuple[object, ...], dict[str, Any]]] = {}


def collect_named(hook: str, accepts: Callable[[Any], bool], kind: str, label: str) -> dict[str, Any]:
    """What every plugin's ``hook`` returns (lists of things with a ``name``), by name, collected
    once per plugin manager and set of plugins (a plugin registered since is seen). A thing of
    the wrong ``kind`` or a name declared twice is a start-up error, so a gateway and a node with
    the same plugins agree on them. Task families and training methods are collected this way."""
    from .errors import ConfigError

    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook)
    key = (pm, *(i.plugin for i in caller.get_hookimpls()))
    cached = _COLLECTED.get(hook)
    if cached is not None and cached[0] == key:
        return cached[1]
    found: dict[str, Any] = {}
    for batch in caller():
        for item in batch or []:
            if not accepts(item):
                raise ConfigError(f"{hook} returned {item!r}, not a {kind}")
            if item.name in found:
                raise ConfigError(f"{label} {item.name!r} is declared twice: by {found[item.name]!r} and by {item!r}")
            found[item.name] = item
    _COLLECTED[hook] = (key, found)
    return found
