"""The core's default CPU backend (colabhive/default_cpu.py): a bare install has one CPU
device; with the colabhive-cpu package registered there is still exactly one, the package's."""

from __future__ import annotations

import colabhive_cpu
import pluggy

from colabhive import default_cpu, hookimpl
from colabhive.plugins import make_plugin_manager
from colabhive.wire import Device


def _devices(pm: pluggy.PluginManager) -> list[Device]:
    return [d for group in pm.hook.hive_devices() for d in group]


class ToyAccel:
    """A backend with no CPU device of its own."""

    @hookimpl
    def hive_devices(self) -> list[Device]:
        return [Device(kind="toyaccel", name="toy")]

    @hookimpl
    def hive_torch_device(self, device: Device) -> str | None:
        return "cpu" if device.kind == "toyaccel" else None


def test_a_bare_install_has_one_cpu_device() -> None:
    pm = make_plugin_manager(entry_points=False)
    devices = _devices(pm)
    assert devices == [default_cpu.cpu_device()]
    d = devices[0]
    assert d.kind == "cpu" and d.id == "cpu:0" and d.dtypes == ["fp32"] and d.memory_mb > 0
    assert pm.hook.hive_torch_device(device=d) == "cpu"
    assert pm.hook.hive_torch_device(device=Device(kind="cuda")) is None
    stats = pm.hook.hive_device_stats(device=d)
    assert stats.device == "cpu:0" and stats.free_memory_mb > 0
    assert stats.power_w is None and stats.utilisation is None  # unknown, not guessed


def test_the_cpu_package_supersedes_the_default_with_no_second_device() -> None:
    pm = make_plugin_manager(colabhive_cpu, entry_points=False)
    devices = _devices(pm)
    assert [d.kind for d in devices] == ["cpu"]
    assert devices[0] == colabhive_cpu.cpu_device()  # the package's, with its CPU-flag dtypes
    stats = pm.hook.hive_device_stats(device=devices[0])
    assert stats.energy_j is not None  # the package's RAPL or estimate, not the default's None


def test_found_by_entry_point_the_package_still_gives_one_cpu_device() -> None:
    pm = make_plugin_manager()
    assert pm.get_plugin("cpu") is colabhive_cpu and pm.get_plugin(default_cpu.NAME) is default_cpu
    assert [d.kind for d in _devices(pm)].count("cpu") == 1


def test_another_backend_does_not_take_the_cpu_away() -> None:
    pm = make_plugin_manager(ToyAccel(), entry_points=False)
    assert sorted(d.kind for d in _devices(pm)) == ["cpu", "toyaccel"]
