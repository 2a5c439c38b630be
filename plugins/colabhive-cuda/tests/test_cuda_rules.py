"""The pure rules of the CUDA plugin: dtypes and capabilities by compute capability, GPU
order, driver compatibility, and CUDA_VISIBLE_DEVICES read exactly as torch reads it."""

from __future__ import annotations

import pytest
import torch
from colabhive_cuda.rules import Gpu, capabilities_for, driver_supports, dtypes_for, pci_order, visible
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("cc", "dtypes"),
    [
        ((5, 2), ["fp32"]),  # Maxwell GM204: no native fp16 arithmetic
        ((5, 3), ["fp32", "fp16"]),  # Jetson Nano: double-rate fp16
        ((6, 0), ["fp32", "fp16"]),  # P100: double-rate fp16, no dp4a
        ((6, 1), ["fp32", "int8"]),  # GTX 1080 / P40: fp16 at 1/64 rate is not offered; dp4a is
        ((7, 0), ["fp32", "fp16", "int8"]),  # V100
        ((7, 5), ["fp32", "fp16", "int8"]),  # T4
        ((8, 0), ["fp32", "fp16", "bf16", "int8"]),  # A100
        ((8, 6), ["fp32", "fp16", "bf16", "int8"]),  # RTX 3090
        ((9, 0), ["fp32", "fp16", "bf16", "int8"]),  # H100
        ((12, 0), ["fp32", "fp16", "bf16", "int8"]),  # Blackwell consumer
    ],
)
def test_dtypes_by_compute_capability(cc: tuple[int, int], dtypes: list[str]) -> None:
    assert dtypes_for(cc) == dtypes


def test_capabilities_by_compute_capability() -> None:
    assert capabilities_for((6, 1)) == ["sm_61"]
    assert capabilities_for((7, 5)) == ["sm_75", "tensor_cores"]
    assert capabilities_for((8, 6)) == ["sm_86", "tensor_cores", "tf32"]
    assert capabilities_for((8, 9)) == ["sm_89", "tensor_cores", "tf32", "fp8"]
    hopper = ["sm_90", "tensor_cores", "tf32", "fp8", "nvlink", "mig"]
    assert capabilities_for((9, 0), nvlink=True, mig=True) == hopper


def _gpu(uuid: str, bus: str) -> Gpu:
    return Gpu(uuid=uuid, pci_bus_id=bus, name=uuid, memory_mb=1, cc=(8, 0))


def test_pci_order_sorts_by_bus_id() -> None:
    gpus = [_gpu("GPU-c", "00000000:C1:00.0"), _gpu("GPU-a", "00000000:3b:00.0"), _gpu("GPU-b", "00000000:5E:00.0")]
    assert [g.uuid for g in pci_order(gpus)] == ["GPU-a", "GPU-b", "GPU-c"]


UUIDS = ["GPU-aa11", "GPU-ab22", "GPU-b333"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2]),
        ("", []),
        ("2,0", [2, 0]),  # CUDA numbers them in the variable's order: cuda:0 is GPU 2
        ("1,7,0", [1]),  # GPU 7 does not exist: the list ends there
        ("0,-1,2", [0]),  # a negative entry ends the list
        ("1,1", []),  # a repeated GPU hides every GPU
        ("1gpu,2ampere", [1, 2]),  # strtoul reads the leading number
        ("GPU-b", [2]),  # a unique UUID prefix
        ("GPU-a", []),  # ambiguous prefix: nothing before it, so nothing
        ("GPU-ab,GPU-aa", [1, 0]),
        ("GPU-ab,GPU-zz,GPU-aa", [1]),  # an unknown UUID ends the list
        ("GPU-ab,1", [1]),  # a non-UUID entry ends a UUID list
        ("GPU-ab,GPU-ab22", []),  # the same GPU twice
    ],
)
def test_visible_devices(value: str | None, expected: list[int]) -> None:
    assert visible(value, UUIDS) == expected


def _torch_reading(value: str, uuids: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], int]:
    """What torch makes of CUDA_VISIBLE_DEVICES=value on a host whose NVML lists ``uuids``:
    the ordinals its parser yields and the count its NVML-based check reports."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    monkeypatch.setattr(torch.cuda, "_raw_device_count_nvml", lambda: len(uuids))
    monkeypatch.setattr(torch.cuda, "_raw_device_uuid_nvml", lambda: list(uuids))
    parsed = torch.cuda._parse_visible_devices()
    if parsed and isinstance(parsed[0], str):
        ordinals = torch.cuda._transform_uuid_to_ordinals(parsed, uuids)
    else:
        ordinals = []
        for n in parsed:
            if n >= len(uuids):
                break
            ordinals.append(n)
    return ordinals, torch.cuda._device_count_nvml()


needs_torch_parser = pytest.mark.skipif(
    not all(
        hasattr(torch.cuda, f)
        for f in ("_parse_visible_devices", "_transform_uuid_to_ordinals", "_device_count_nvml")
    ),
    reason="this torch no longer has the CUDA_VISIBLE_DEVICES parser the rule is checked against",
)
TOKENS = ["0", "1", "2", "3", "7", "-1", "+1", "1gpu", " 2", "", "x", "GPU-a", "GPU-ab", "GPU-b", "GPU-", "GPU-zz"]


@needs_torch_parser
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5))
def test_visible_devices_agree_with_torch(tokens: list[str]) -> None:
    value = ",".join(tokens)
    with pytest.MonkeyPatch.context() as mp:
        ordinals, count = _torch_reading(value, UUIDS, mp)
    ours = visible(value, UUIDS)
    assert ours == ordinals, value
    assert len(ours) == count, value


@pytest.mark.parametrize(
    ("driver", "runtime", "ok"),
    [
        (12040, "12.4", True),
        (12020, "12.8", True),  # minor version compatibility within CUDA 12
        (13000, "12.8", True),
        (11080, "12.1", False),  # a CUDA 11 driver cannot run a CUDA 12 torch
        (12080, None, False),  # CPU-only torch
        (12080, "weird", False),
    ],
)
def test_driver_supports(driver: int, runtime: str | None, ok: bool) -> None:
    assert driver_supports(driver, runtime) is ok
