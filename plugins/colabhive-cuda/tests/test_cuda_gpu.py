"""The CUDA plugin on a real GPU: these run where ``torch.cuda`` has a device and skip,
saying so, everywhere else (this project's CI has none)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import torch
from colabhive.plugins import make_plugin_manager

needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False here)"
)


def _in_fresh_process(script: str, **env: str) -> Any:
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_gpu
def test_real_gpu_discovery_matches_torch() -> None:
    out = _in_fresh_process(
        "import json, torch, colabhive_cuda as c\n"
        "d = c.hive_devices(); before = torch.cuda.is_initialized()\n"
        "p = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]\n"
        "ours = [[x.name, x.memory_mb, x.capabilities[0]] for x in d]\n"
        "theirs = [[q.name, q.total_memory >> 20, f'sm_{q.major}{q.minor}'] for q in p]\n"
        "print(json.dumps({'started_by_discovery': before, 'ours': ours, 'torch': theirs}))"
    )
    assert out["started_by_discovery"] is False
    assert len(out["ours"]) == len(out["torch"]) > 0
    for (name, mb, sm), (t_name, t_mb, t_sm) in zip(out["ours"], out["torch"]):
        assert (name, sm) == (t_name, t_sm)
        assert abs(mb - t_mb) <= 0.02 * t_mb  # NVML counts the memory CUDA reserves for itself


@needs_gpu
def test_real_gpu_visible_devices_and_pinning() -> None:
    import colabhive_cuda

    devices = colabhive_cuda.hive_devices()
    last = devices[-1]
    env = colabhive_cuda.hive_device_env(last)
    assert env is not None and env["CUDA_VISIBLE_DEVICES"].startswith(("GPU-", "MIG-"))
    script = (
        "import json, torch, colabhive_cuda as c\n"
        "print(json.dumps({'ours': [x.name for x in c.hive_devices()], 'torch': torch.cuda.device_count(),"
        " 'name': torch.cuda.get_device_name(0) if torch.cuda.device_count() else None}))"
    )
    pinned = _in_fresh_process(script, **env)
    assert pinned == {"ours": [last.name], "torch": 1, "name": last.name}
    hidden = _in_fresh_process(script, CUDA_VISIBLE_DEVICES="")
    assert hidden == {"ours": [], "torch": 0, "name": None}


@needs_gpu
def test_real_gpu_place_run_synchronize_and_stats() -> None:
    pm = make_plugin_manager()
    (gpu, *_) = [d for group in pm.hook.hive_devices() for d in group if d.kind == "cuda"]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 8))
    x = torch.randn(32, 64)
    want = model(x)
    before = pm.hook.hive_device_stats(device=gpu)
    dtype = "bf16" if "bf16" in gpu.dtypes else "fp16"
    placed = pm.hook.hive_place_model(model=model, device=gpu, dtype=dtype)
    assert next(placed.parameters()).device.type == "cuda"
    with torch.inference_mode():
        for _ in range(200):
            got = placed(x.to(gpu.id, getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[dtype])))
    assert pm.hook.hive_synchronize(device=gpu) is True
    assert torch.allclose(got.float().cpu(), want, atol=0.1, rtol=0.05)
    after = pm.hook.hive_device_stats(device=gpu)
    assert before is not None and after is not None
    assert 0 < (after.free_memory_mb or 0) <= gpu.memory_mb
    assert after.utilisation is not None and 0.0 <= after.utilisation <= 1.0
    assert after.power_w is not None and after.power_w > 0
    if before.energy_j is not None:
        assert after.energy_j is not None and after.energy_j >= before.energy_j
    reserved = torch.cuda.memory_reserved(gpu.index)
    del model, placed, got  # Module.to moves in place: model is placed
    gc.collect()
    assert pm.hook.hive_release_memory(device=gpu) is True
    assert torch.cuda.memory_reserved(gpu.index) < reserved
