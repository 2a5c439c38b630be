"""The CUDA plugin on this host (no NVIDIA driver: no devices, None for other kinds) and
against a fake NVML and a fake ``torch.cuda`` (the GPU is the one thing faked here).

Tests marked ``needs a CUDA GPU`` run the real thing where ``torch.cuda`` has a device.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import colabhive_cuda as cuda
import pytest
import torch
from colabhive.plugins import make_plugin_manager
from colabhive.wire import Device
from colabhive_cuda.discovery import discover

MiB = 1 << 20
GiB = 1 << 30
has_gpu = torch.cuda.is_available()


# ---- fakes ---------------------------------------------------------------------------------


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's name)
    pass


@dataclass
class FakeGpu:
    uuid: str
    bus: str
    name: str
    total: int
    cc: tuple[int, int]
    nvlink_links: int = 0
    mig: bool = False
    free: int = 0
    util: int = 0
    power_mw: int | None = 0
    energy_mj: int | None = 0


@dataclass
class FakeNvml:
    """pynvml's surface as the plugin uses it, over a list of GPUs in NVML's index order."""

    gpus: list[FakeGpu]
    driver: int = 12080
    calls: list[str] = field(default_factory=list)
    NVMLError = NVMLError
    NVML_FEATURE_ENABLED = 1
    NVML_DEVICE_MIG_ENABLE = 1
    NVML_NVLINK_MAX_LINKS = 18

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for g in self.gpus:
            if g.uuid == uuid:
                return g
        raise NVMLError("not found")

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return h.uuid

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return h.name

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(busId=h.bus.encode())  # a c_char array: bytes

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(total=h.total, free=h.free, used=h.total - h.free)

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGpu) -> tuple[int, int]:
        return h.cc

    def nvmlDeviceGetNvLinkState(self, h: FakeGpu, link: int) -> int:
        if h.nvlink_links == 0:
            raise NVMLError_NotSupported()
        return 1 if link < h.nvlink_links else 0

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> tuple[int, int]:
        if h.cc < (8, 0):
            raise NVMLError_NotSupported()
        return (1, 1) if h.mig else (0, 0)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=h.util, memory=0)

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        if h.power_mw is None:
            raise NVMLError_NotSupported()
        return h.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        if h.energy_mj is None:
            raise NVMLError_NotSupported()
        return h.energy_mj


def fake_torch(*, built: bool = True, cuda_version: str | None = "12.8", initialised: bool = False,
               props: list[Any] | None = None) -> SimpleNamespace:
    """torch as far as the plugin looks: build flags, and torch.cuda for the fallback path."""
    synced: list[int] = []
    emptied: list[int] = []
    current = [0]

    @contextlib.contextmanager
    def on_device(i: int) -> Iterator[None]:
        current[0] = i
        yield

    cuda_ns = SimpleNamespace(
        is_initialized=lambda: initialised,
        device_count=lambda: len(props or []),
        get_device_properties=lambda i: (props or [])[i],
        mem_get_info=lambda i: (3 * GiB, 16 * GiB),
        synchronize=lambda i: synced.append(i),
        synced=synced,
        device=on_device,
        empty_cache=lambda: emptied.append(current[0]),
        emptied=emptied,
    )
    return SimpleNamespace(
        __version__="2.13.0+fake",
        backends=SimpleNamespace(cuda=SimpleNamespace(is_built=lambda: built)),
        version=SimpleNamespace(cuda=cuda_version if built else None, hip=None),
        cuda=cuda_ns,
    )


def mixed_host() -> FakeNvml:
    """An A100 with NVLink and a T4, NVML listing the T4 first (its bus id sorts last)."""
    return FakeNvml(
        [
            FakeGpu("GPU-t4-0001", "00000000:AF:00.0", "Tesla T4", 16 * GiB, (7, 5)),
            FakeGpu("GPU-a100-0002", "00000000:3B:00.0", "NVIDIA A100-SXM4-80GB", 80 * GiB, (8, 0), nvlink_links=12,
                    free=70 * GiB, util=37, power_mw=215_500, energy_mj=9_876_543),
        ]
    )


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The plugin with its per-process discovery forgotten before and after the test."""
    monkeypatch.setattr(cuda, "_state", None)
    yield cuda
    cuda._state = None


def use_fakes(monkeypatch: pytest.MonkeyPatch, nvml: FakeNvml | None, torch_ns: Any, **env: str) -> None:
    monkeypatch.setattr(cuda, "load_nvml", lambda: nvml)
    monkeypatch.setattr(cuda, "_torch", lambda: torch_ns)
    for key in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


# ---- this host, for real -------------------------------------------------------------------


def test_found_by_entry_point() -> None:
    pm = make_plugin_manager()
    assert any(name == "cuda" for name, _ in pm.list_name_plugin())


def test_this_host_lists_what_torch_sees(plugin: Any) -> None:
    devices = plugin.hive_devices()
    assert [d.kind for d in devices] == ["cuda"] * (torch.cuda.device_count() if has_gpu else 0)


def test_discovery_is_cheap_and_starts_no_cuda() -> None:
    """In a fresh process: without a driver torch is not even imported; with one, CUDA is
    not started just to list the devices."""
    script = (
        "import json, sys, time, colabhive; t = time.perf_counter(); import colabhive_cuda as c; "
        "d = c.hive_devices(); ms = (time.perf_counter() - t) * 1000; "
        "started = 'torch' in sys.modules and sys.modules['torch'].cuda.is_initialized(); "
        "print(json.dumps({'n': len(d), 'torch': 'torch' in sys.modules, 'pynvml': 'pynvml' in sys.modules, "
        "'cuda_started': started, 'nvml': c.load_nvml() is not None, 'ms': ms}))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    assert out["cuda_started"] is False
    if not out["nvml"]:
        assert out == {**out, "n": 0, "torch": False, "pynvml": False}
        # the plugin's import (colabhive itself is loaded already, as in a node) and a failed dlopen
        assert out["ms"] < 100, out


def test_hooks_answer_none_for_other_kinds(plugin: Any) -> None:
    cpu = Device(kind="cpu")
    assert plugin.hive_torch_device(cpu) is None
    assert plugin.hive_place_model(torch.nn.Linear(2, 2), cpu, "fp32") is None
    assert plugin.hive_synchronize(cpu) is None
    assert plugin.hive_device_stats(cpu) is None
    assert plugin.hive_device_env(cpu) is None
    assert plugin.hive_release_memory(cpu) is None


def test_plugin_manager_routes_cpu_and_cuda() -> None:
    pm = make_plugin_manager()
    assert pm.hook.hive_torch_device(device=Device(kind="cpu")) == "cpu"
    assert pm.hook.hive_torch_device(device=Device(kind="cuda", index=1)) == "cuda:1"


# ---- discovery against a fake NVML --------------------------------------------------------


def test_devices_in_pci_order_with_dtypes_and_capabilities() -> None:
    env: dict[str, str] = {}
    found = discover(mixed_host(), fake_torch(), env)
    a100, t4 = (f.device for f in found)
    assert (a100.id, a100.name, a100.memory_mb) == ("cuda:0", "NVIDIA A100-SXM4-80GB", 80 * 1024)
    assert a100.dtypes == ["fp32", "fp16", "bf16", "int8"]
    assert a100.capabilities == ["sm_80", "tensor_cores", "tf32", "nvlink"]
    assert (t4.id, t4.dtypes, t4.capabilities) == ("cuda:1", ["fp32", "fp16", "int8"], ["sm_75", "tensor_cores"])
    assert env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}  # so CUDA numbers them as listed here


@pytest.mark.parametrize(
    ("visible", "names"),
    [("1", ["Tesla T4"]), ("1,0", ["Tesla T4", "NVIDIA A100-SXM4-80GB"]), ("GPU-t4", ["Tesla T4"]), ("", [])],
)
def test_cuda_visible_devices_is_respected(visible: str, names: list[str]) -> None:
    found = discover(mixed_host(), fake_torch(), {"CUDA_VISIBLE_DEVICES": visible})
    assert [f.device.name for f in found] == names
    assert [f.device.index for f in found] == list(range(len(names)))


def test_no_devices_without_a_cuda_torch_or_with_an_old_driver() -> None:
    assert discover(mixed_host(), fake_torch(built=False), {}) == []
    old = mixed_host()
    old.driver = 11080
    assert discover(old, fake_torch(cuda_version="12.8"), {}) == []


def _props(uuid: str, name: str, cc: tuple[int, int], total: int) -> SimpleNamespace:
    return SimpleNamespace(uuid=uuid, name=name, major=cc[0], minor=cc[1], total_memory=total)


def test_mig_asks_torch_and_matches_nvml_by_uuid() -> None:
    nvml = FakeNvml([FakeGpu("MIG-1111", "00000000:3B:00.0", "NVIDIA A100 MIG 3g.40gb", 40 * GiB, (8, 0), mig=True)])
    props = [_props("1111", "NVIDIA A100-SXM4-80GB MIG 3g.40gb", (8, 0), 40 * GiB)]
    found = discover(nvml, fake_torch(props=props), {})
    assert len(found) == 1
    assert found[0].uuid == "MIG-1111" and found[0].handle is nvml.gpus[0]
    assert "mig" in found[0].device.capabilities


@pytest.mark.parametrize("reason", ["fastest_first", "cuda_started"])
def test_torch_decides_when_nvml_order_cannot_be_trusted(reason: str) -> None:
    env = {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"} if reason == "fastest_first" else {}
    # CUDA put the T4 first: only torch knows that
    props = [_props("t4-0001", "Tesla T4", (7, 5), 15 * GiB), _props("a100-0002", "NVIDIA A100", (8, 0), 79 * GiB)]
    found = discover(mixed_host(), fake_torch(props=props, initialised=reason == "cuda_started"), env)
    assert [(f.device.id, f.device.name, f.uuid) for f in found] == [
        ("cuda:0", "Tesla T4", "GPU-t4-0001"),
        ("cuda:1", "NVIDIA A100", "GPU-a100-0002"),
    ]
    assert "nvlink" in found[1].device.capabilities  # NVML still describes it, matched by UUID
    assert env.get("CUDA_DEVICE_ORDER") in (None, "FASTEST_FIRST")  # the operator's choice stands


# ---- the hooks against the fakes ---------------------------------------------------------


def test_hooks_through_the_plugin(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml, t = mixed_host(), fake_torch()
    use_fakes(monkeypatch, nvml, t, CUDA_VISIBLE_DEVICES="1,0")
    t4, a100 = plugin.hive_devices()
    assert (t4.name, a100.name) == ("Tesla T4", "NVIDIA A100-SXM4-80GB")
    assert plugin.hive_torch_device(a100) == "cuda:1"
    assert plugin.hive_device_env(t4) == {"CUDA_VISIBLE_DEVICES": "GPU-t4-0001"}
    assert plugin.hive_synchronize(a100) is True and t.cuda.synced == [1]
    assert plugin.hive_release_memory(a100) is True and t.cuda.emptied == [1]
    stats = plugin.hive_device_stats(a100)
    assert stats is not None
    assert (stats.device, stats.free_memory_mb, stats.utilisation) == ("cuda:1", 70 * 1024, 0.37)
    assert (stats.power_w, stats.energy_j, stats.power_estimated) == (215.5, 9876.543, False)
    with pytest.raises(ValueError, match="cuda:5"):
        plugin.hive_device_env(Device(kind="cuda", index=5))
    assert plugin.hive_device_stats(Device(kind="cuda", index=5)) is None


def test_missing_figures_are_none_not_guesses(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = mixed_host()
    nvml.gpus[0].power_mw = None  # a T4 behind a hypervisor that hides power
    nvml.gpus[0].energy_mj = None  # and energy (also the case before Volta)
    use_fakes(monkeypatch, nvml, fake_torch(), CUDA_VISIBLE_DEVICES="1")
    (t4,) = plugin.hive_devices()
    stats = plugin.hive_device_stats(t4)
    assert stats is not None and stats.power_w is None and stats.energy_j is None
    assert stats.utilisation == 0.0 and stats.free_memory_mb == 0


def test_device_without_nvml_handle_reports_torch_free_memory(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    props = [_props("unknown-to-nvml", "NVIDIA L4", (8, 9), 22 * GiB)]
    use_fakes(monkeypatch, FakeNvml([]), fake_torch(props=props, initialised=True))
    (l4,) = plugin.hive_devices()
    assert "fp8" in l4.capabilities
    stats = plugin.hive_device_stats(l4)
    assert stats is not None and stats.free_memory_mb == 3 * 1024 and stats.power_w is None


def test_no_nvml_no_devices_and_no_torch(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_torch() -> Any:
        raise AssertionError("torch must not be imported when NVML cannot load")

    use_fakes(monkeypatch, None, None)
    monkeypatch.setattr(cuda, "_torch", no_torch)
    assert plugin.hive_devices() == []


def test_nvml_failing_on_a_gpu_asks_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = mixed_host()

    def lost(h: FakeGpu) -> str:
        raise NVMLError("GPU is lost")

    nvml.nvmlDeviceGetName = lost  # type: ignore[method-assign]
    props = [_props("a100-0002", "NVIDIA A100", (8, 0), 79 * GiB)]
    found = discover(nvml, fake_torch(props=props), {})
    assert [(f.device.name, f.uuid) for f in found] == [("NVIDIA A100", "GPU-a100-0002")]


def test_a_failing_driver_never_raises(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = mixed_host()
    t = fake_torch()

    def broken() -> int:
        raise NVMLError("GPU is lost")

    def also_broken(i: int) -> Any:
        raise RuntimeError("CUDA error: unknown error")

    nvml.nvmlDeviceGetCount = broken  # type: ignore[method-assign]
    t.cuda.device_count = lambda: 1
    t.cuda.get_device_properties = also_broken
    use_fakes(monkeypatch, nvml, t)
    assert plugin.hive_devices() == []


def test_load_nvml_on_this_host() -> None:
    """NVML loads exactly where the driver's libnvidia-ml does (here: nowhere, and quietly)."""
    try:
        ctypes.CDLL(cuda.NVML_LIBRARY)
        has_driver = True
    except OSError:
        has_driver = False
    assert (cuda.load_nvml() is not None) == has_driver
