"""The shared accelerator placement steps (colabhive_accel.placing, used by the CUDA and XPU
plugins), checked on the CPU: only the target string differs on a GPU."""

from __future__ import annotations

import pytest
import torch

from colabhive_accel import prepare


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout(0.5), torch.nn.Flatten()).train()


def test_prepare_casts_freezes_and_uses_channels_last() -> None:
    m = prepare(_net(), "cpu", "bf16")
    conv = m[0]
    assert not m.training
    assert conv.weight.dtype == torch.bfloat16
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    lin = prepare(torch.nn.Linear(4, 4), "cpu", "fp16")
    assert lin.weight.dtype == torch.float16 and lin.weight.is_contiguous()


def test_prepare_int8_moves_quantised_models_only() -> None:
    with pytest.raises(ValueError, match="quantised"):
        prepare(torch.nn.Linear(4, 4), "cpu", "int8")
    m = torch.nn.Linear(4, 4)
    m.register_buffer("qweight", torch.zeros(4, 4, dtype=torch.int8))
    placed = prepare(m, "cpu", "int8")
    assert placed.qweight.dtype == torch.int8 and placed.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="fp64"):
        prepare(torch.nn.Linear(4, 4), "cpu", "fp64")
