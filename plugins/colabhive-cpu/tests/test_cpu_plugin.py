"""The CPU plugin against the real host: discovery, placement, live stats."""

from __future__ import annotations

import colabhive_cpu as cpu
from colabhive.plugins import make_plugin_manager
from colabhive.wire import Device


def test_found_by_entry_point() -> None:
    pm = make_plugin_manager()
    assert any(name == "cpu" for name, _ in pm.list_name_plugin())
    devices = [d for group in pm.hook.hive_devices() for d in group]
    assert [d.kind for d in devices].count("cpu") == 1


def test_device_reports_memory_and_dtypes() -> None:
    d = cpu.cpu_device()
    assert d.memory_mb > 0
    assert d.dtypes[0] == "fp32"
    flags = open("/proc/cpuinfo").read()
    assert ("bf16" in d.dtypes) == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_low_precision_only_where_the_flags_make_it_native() -> None:
    """bf16 with AVX-512 BF16 or AMX, fp16 with AVX512-FP16 or AMX-FP16; never emulated."""
    assert cpu.cpu_dtypes({"avx2", "fma", "avx512f"})[0] == ["fp32"]
    assert cpu.cpu_dtypes({"avx512f", "avx512_bf16"})[0] == ["fp32", "bf16"]
    assert cpu.cpu_dtypes({"amx_tile", "amx_bf16", "amx_int8"})[0] == ["fp32", "bf16"]
    assert cpu.cpu_dtypes({"amx_bf16", "amx_fp16", "avx512_fp16"})[0] == ["fp32", "bf16", "fp16"]
    dtypes, notes = cpu.cpu_dtypes({"avx2"})
    assert any(n.startswith("bf16: not offered") and "avx512_bf16" in n for n in notes), notes
    _, notes = cpu.cpu_dtypes({"amx_bf16"})
    assert "bf16: native (amx_bf16)" in notes


def test_this_hosts_notes_explain_its_dtypes() -> None:
    d = cpu.cpu_device()
    assert len(d.dtype_notes) == 2 and {n.split(":")[0] for n in d.dtype_notes} == {"bf16", "fp16"}


def test_torch_device_only_for_cpu() -> None:
    assert cpu.hive_torch_device(Device(kind="cpu")) == "cpu"
    assert cpu.hive_torch_device(Device(kind="cuda")) is None


def test_stats_are_live_and_marked() -> None:
    dev = Device(kind="cpu")
    first = cpu.hive_device_stats(dev)
    sum(i * i for i in range(200_000))  # some CPU work between two samples
    second = cpu.hive_device_stats(dev)
    assert first is not None and second is not None
    assert second.free_memory_mb and second.free_memory_mb > 0
    assert 0.0 <= (second.utilisation or 0.0) <= 1.0
    assert second.energy_j is not None and second.energy_j >= (first.energy_j or 0.0)
    assert cpu.hive_device_stats(Device(kind="cuda")) is None
