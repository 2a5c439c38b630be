"""The XPU plugin on this host (no Intel GPU: no devices, torch not even imported, None for
other kinds) and against a fake ``torch.xpu`` and fake Level Zero Sysman bindings (the GPU
is the one thing faked here).

Tests marked ``needs an Intel XPU`` run the real thing where ``torch.xpu`` has a device.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import colabhive_xpu as xpu
import pytest
import torch
from colabhive.plugins import make_plugin_manager
from colabhive.wire import Device
from colabhive_xpu.discovery import discover, intel_gpu_present
from colabhive_xpu.rules import capabilities_for, dtypes_for, has_xmx, pin_env
from colabhive_xpu.stats import Sampler

GiB = 1 << 30
has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
needs_xpu = pytest.mark.skipif(not has_xpu, reason="needs an Intel XPU GPU (torch.xpu.is_available() is False here)")


# ---- fakes -----------------------------------------------------------------------------------


def props(name: str, total_gib: int, *, fp16: bool = True, fp64: bool = False, xmx: bool | None = True,
          tf32: bool = False, integrated: bool = False) -> SimpleNamespace:
    """What torch.xpu.get_device_properties returns, for the fields the plugin reads.
    ``xmx=None``: a torch too old to report DPAS support."""
    p = SimpleNamespace(name=name, total_memory=total_gib * GiB, has_fp16=fp16, has_fp64=fp64, has_atomic64=True,
                        has_subgroup_matrix_multiply_accumulate_tensor_float32=tf32, is_integrated_gpu=integrated)
    if xmx is not None:
        p.has_subgroup_matrix_multiply_accumulate = xmx
    return p


ARC_A770 = props("Intel(R) Arc(TM) A770 Graphics", 16)
MAX_1550 = props("Intel(R) Data Center GPU Max 1550", 64, fp64=True, tf32=True)
IRIS_XE = props("Intel(R) Iris(R) Xe Graphics", 8, xmx=False, integrated=True)


def fake_torch(devices: list[SimpleNamespace], *, free_gib: int | None = 10, initialised: bool = False,
               power_handle: bool = True) -> SimpleNamespace:
    synced: list[int] = []
    emptied: list[int] = []
    current = [0]

    @contextlib.contextmanager
    def on_device(i: int) -> Iterator[None]:
        current[0] = i
        yield


    def mem_get_info(i: int) -> tuple[int, int]:
        if free_gib is None:
            raise RuntimeError("ZES_ENABLE_SYSMAN was not set when the driver started")
        return free_gib * GiB, devices[i].total_memory

    ns = SimpleNamespace(
        is_initialized=lambda: initialised,
        is_available=lambda: bool(devices),
        device_count=lambda: len(devices),
        get_device_properties=lambda i: devices[i],
        mem_get_info=mem_get_info,
        synchronize=lambda i: synced.append(i),
        synced=synced,
        device=on_device,
        empty_cache=lambda: emptied.append(current[0]),
        emptied=emptied,
    )
    if power_handle:
        ns._get_zes_power_handle = lambda i: f"power-domain-{i}"
    return SimpleNamespace(__version__="2.13.0+fake", xpu=ns)


class EnergyCounter(ctypes.Structure):
    _fields_ = [("energy", ctypes.c_uint64), ("timestamp", ctypes.c_uint64)]


def fake_pyzes(readings: list[tuple[int, int]], rc: int = 0) -> ModuleType:
    """pyzes as torch and the plugin use it: zesPowerGetEnergyCounter fills (µJ, µs)."""
    mod = ModuleType("pyzes")
    mod.ZE_RESULT_SUCCESS = 0  # type: ignore[attr-defined]
    mod.zes_power_energy_counter_t = EnergyCounter  # type: ignore[attr-defined]
    queue = list(readings)

    def read(handle: str, counter_ref: Any) -> int:
        assert handle.startswith("power-domain-")
        counter = counter_ref._obj
        counter.energy, counter.timestamp = queue.pop(0)
        return rc

    mod.zesPowerGetEnergyCounter = read  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The plugin with its per-process discovery and power samples forgotten around the test."""
    monkeypatch.setattr(xpu, "_found", None)
    monkeypatch.setattr(xpu, "_sampler", Sampler())
    yield xpu
    xpu._found = None


# ---- this host, for real -------------------------------------------------------------------


def test_found_by_entry_point() -> None:
    pm = make_plugin_manager()
    assert any(name == "xpu" for name, _ in pm.list_name_plugin())


def test_this_host_lists_what_torch_sees(plugin: Any) -> None:
    assert [d.kind for d in plugin.hive_devices()] == ["xpu"] * (torch.xpu.device_count() if has_xpu else 0)


def test_no_intel_gpu_no_torch_import() -> None:
    script = (
        "import json, sys, time, colabhive, colabhive.plugins; t = time.perf_counter(); import colabhive_xpu as x; "
        "d = x.hive_devices(); ms = (time.perf_counter() - t) * 1000; "
        "from colabhive_xpu.discovery import intel_gpu_present as p; "
        "print(json.dumps({'n': len(d), 'torch': 'torch' in sys.modules, 'intel': p(), 'ms': ms}))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    if not out["intel"]:
        assert out == {**out, "n": 0, "torch": False}
        assert out["ms"] < 100, out


def test_hooks_answer_none_for_other_kinds(plugin: Any) -> None:
    cpu = Device(kind="cpu")
    assert plugin.hive_torch_device(cpu) is None
    assert plugin.hive_place_model(torch.nn.Linear(2, 2), cpu, "fp32") is None
    assert plugin.hive_synchronize(cpu) is None
    assert plugin.hive_device_stats(cpu) is None
    assert plugin.hive_device_env(cpu) is None
    assert plugin.hive_release_memory(cpu) is None


def test_plugin_manager_routes_xpu() -> None:
    assert make_plugin_manager().hook.hive_torch_device(device=Device(kind="xpu", index=1)) == "xpu:1"


# ---- rules --------------------------------------------------------------------------------------


def test_dtypes_and_capabilities_from_properties() -> None:
    assert dtypes_for(ARC_A770) == ["fp32", "fp16", "bf16", "int8"]
    assert capabilities_for(ARC_A770) == ["xmx", "atomic64"]  # Arc emulates fp64
    assert dtypes_for(MAX_1550) == ["fp32", "fp16", "bf16", "int8"]
    assert capabilities_for(MAX_1550) == ["xmx", "tf32", "fp64", "atomic64"]
    assert dtypes_for(IRIS_XE) == ["fp32", "fp16"]  # no XMX: bf16 would only be converted
    assert capabilities_for(IRIS_XE) == ["atomic64", "igpu"]
    assert dtypes_for(props("x", 1, fp16=False, xmx=False)) == ["fp32"]


def test_xmx_by_name_on_an_older_torch() -> None:
    assert has_xmx(props("Intel(R) Arc(TM) A770 Graphics", 16, xmx=None))
    assert has_xmx(props("Intel(R) Arc(TM) B580 Graphics", 12, xmx=None))
    assert has_xmx(props("Intel(R) Data Center GPU Max 1100", 48, xmx=None))
    assert not has_xmx(props("Intel(R) Arc(TM) Graphics", 8, xmx=None))  # Meteor Lake iGPU: no XMX
    assert not has_xmx(props("Intel(R) UHD Graphics 770", 4, xmx=None))


def test_pin_env_follows_the_node_own_mask() -> None:
    assert pin_env(1, None) == {"ZE_AFFINITY_MASK": "1"}
    assert pin_env(1, "2,3") == {"ZE_AFFINITY_MASK": "3"}
    assert pin_env(0, "0.1, 1.0") == {"ZE_AFFINITY_MASK": "0.1"}  # a tile of device 0
    with pytest.raises(ValueError, match="xpu:2"):
        pin_env(2, "0,1")


def test_intel_gpu_present_reads_sysfs(tmp_path: Path) -> None:
    drm, wsl = tmp_path / "drm", tmp_path / "dxg"
    assert not intel_gpu_present(drm, wsl)
    for card, vendor in (("card0", "0x10de"), ("card1", "0x1002")):
        (drm / card / "device").mkdir(parents=True)
        (drm / card / "device" / "vendor").write_text(vendor + "\n")
    assert not intel_gpu_present(drm, wsl)  # NVIDIA and AMD only
    (drm / "card2" / "device").mkdir(parents=True)
    (drm / "card2" / "device" / "vendor").write_text("0x8086\n")
    assert intel_gpu_present(drm, wsl)
    wsl.touch()
    assert intel_gpu_present(tmp_path / "empty", wsl)  # WSL shows no sysfs: torch must be asked


# ---- discovery and hooks against the fakes ----------------------------------------------


def test_discover_sets_sysman_before_the_driver_starts() -> None:
    env: dict[str, str] = {}
    devices = discover(fake_torch([MAX_1550, MAX_1550]), env)
    assert [(d.id, d.name, d.memory_mb) for d in devices] == [
        ("xpu:0", "Intel(R) Data Center GPU Max 1550", 64 * 1024),
        ("xpu:1", "Intel(R) Data Center GPU Max 1550", 64 * 1024),
    ]
    assert env == {"ZES_ENABLE_SYSMAN": "1"}
    env = {"ZES_ENABLE_SYSMAN": "0"}
    discover(fake_torch([ARC_A770]), env)
    assert env == {"ZES_ENABLE_SYSMAN": "0"}  # the operator's choice stands
    env = {}
    discover(fake_torch([ARC_A770], initialised=True), env)
    assert env == {}  # too late to matter: not pretended


def test_no_xpu_in_torch_no_devices() -> None:
    assert discover(SimpleNamespace(__version__="2.13.0+cpu"), {}) == []
    assert discover(fake_torch([]), {}) == []


def use_fakes(monkeypatch: pytest.MonkeyPatch, torch_ns: Any, pyzes: ModuleType | None) -> None:
    monkeypatch.setattr("colabhive_xpu.intel_gpu_present", lambda: True)
    monkeypatch.setattr(xpu, "_torch", lambda: torch_ns)
    monkeypatch.delenv("ZE_AFFINITY_MASK", raising=False)
    monkeypatch.setenv("ZES_ENABLE_SYSMAN", "1")
    if pyzes is None:
        monkeypatch.setitem(sys.modules, "pyzes", None)  # import pyzes raises ImportError
    else:
        monkeypatch.setitem(sys.modules, "pyzes", pyzes)


def test_hooks_and_measured_power(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    t = fake_torch([ARC_A770, IRIS_XE])
    # two readings of the card's counter, 2 s apart, 300 J more: 150 W
    use_fakes(monkeypatch, t, fake_pyzes([(1_000_000_000, 5_000_000), (1_300_000_000, 7_000_000)]))
    arc, iris = plugin.hive_devices()
    assert plugin.hive_torch_device(arc) == "xpu:0"
    assert plugin.hive_synchronize(arc) is True and t.xpu.synced == [0]
    assert plugin.hive_release_memory(iris) is True and t.xpu.emptied == [1]
    assert plugin.hive_device_env(arc) == {"ZE_AFFINITY_MASK": "0"}
    first = plugin.hive_device_stats(arc)
    second = plugin.hive_device_stats(arc)
    assert first is not None and second is not None
    assert (first.device, first.free_memory_mb, first.energy_j, first.power_w) == ("xpu:0", 10 * 1024, 1000.0, None)
    assert (second.energy_j, second.power_w, second.power_estimated) == (1300.0, 150.0, False)
    assert second.utilisation is None  # not sampled by sleeping in a heartbeat
    with pytest.raises(ValueError, match="xpu:7"):
        plugin.hive_device_env(Device(kind="xpu", index=7))
    assert plugin.hive_device_stats(Device(kind="xpu", index=7)) is None


def test_unknown_figures_are_none(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch, fake_torch([ARC_A770], free_gib=None), None)  # no pyzes, Sysman off
    (arc,) = plugin.hive_devices()
    for _ in range(2):
        stats = plugin.hive_device_stats(arc)
        assert stats is not None
        assert (stats.free_memory_mb, stats.power_w, stats.energy_j, stats.utilisation) == (None, None, None, None)


def test_refused_energy_counter_is_none(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fakes(monkeypatch, fake_torch([ARC_A770]), fake_pyzes([(1, 1)], rc=0x70020000))  # not available
    (arc,) = plugin.hive_devices()
    stats = plugin.hive_device_stats(arc)
    assert stats is not None and stats.energy_j is None and stats.free_memory_mb == 10 * 1024


def test_a_failing_runtime_never_raises(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    t = fake_torch([ARC_A770])

    def broken(i: int) -> Any:
        raise RuntimeError("UR_RESULT_ERROR_DEVICE_LOST")

    t.xpu.get_device_properties = broken
    use_fakes(monkeypatch, t, None)
    assert plugin.hive_devices() == []


# ---- on a real Intel GPU ---------------------------------------------------------------------


@needs_xpu
def test_real_xpu_discovery_place_and_stats() -> None:
    pm = make_plugin_manager()
    devices = [d for group in pm.hook.hive_devices() for d in group if d.kind == "xpu"]
    assert len(devices) == torch.xpu.device_count()
    gpu = devices[0]
    assert gpu.name == torch.xpu.get_device_properties(0).name
    model = torch.nn.Linear(16, 4)
    x = torch.randn(8, 16)
    want = model(x)
    placed = pm.hook.hive_place_model(model=model, device=gpu, dtype="fp32")
    got = placed(x.to(gpu.id))
    assert pm.hook.hive_synchronize(device=gpu) is True
    assert torch.allclose(got.cpu(), want, atol=1e-4)
    stats = pm.hook.hive_device_stats(device=gpu)
    assert stats is not None and stats.device == gpu.id
    if stats.free_memory_mb is not None:
        assert 0 < stats.free_memory_mb <= gpu.memory_mb
