"""Pure decisions about NVIDIA GPUs: which dtypes and capabilities a compute capability
earns, which GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible, and whether the driver can run
torch's CUDA runtime. No NVML and no torch here, so every rule is testable without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Gpu",
    "capabilities_for",
    "driver_supports",
    "dtypes_for",
    "pci_order",
    "visible",
]

MiB = 1 << 20
# sm_53 (Tegra X1), sm_60 (P100) and sm_62 (Tegra X2) run fp16 at twice the fp32 rate;
# sm_61 (GTX 10xx, P40, P4) runs it at 1/64 of the fp32 rate, so offering it would slow
# a model down. Everything from Volta (sm_70) on has fp16 tensor cores.
_FAST_FP16_PASCAL_MAXWELL = {(5, 3), (6, 0), (6, 2)}


@dataclass(frozen=True)
class Gpu:
    """One physical GPU as NVML describes it (before ``CUDA_VISIBLE_DEVICES`` is applied)."""

    uuid: str
    """``GPU-…``: what CUDA_VISIBLE_DEVICES may name and what pins a child process to it."""
    pci_bus_id: str
    name: str
    memory_mb: int
    cc: tuple[int, int]
    """Compute capability (major, minor)."""
    nvlink: bool = False
    mig: bool = False
    """MIG mode is on: CUDA then sees its instances, not the GPU."""
    handle: Any = None
    """The NVML handle, for live figures."""


def dtypes_for(cc: tuple[int, int]) -> list[str]:
    """Dtypes worth running in on a GPU of compute capability ``cc``, fp32 first.

    A dtype is offered only where the hardware runs it natively and at least as fast as
    fp32: bf16 from Ampere (sm_80), fp16 where it is full or double rate, int8 where the
    GPU has int8 dot-product instructions (dp4a, sm_61+; int8 tensor cores from sm_72).
    """
    out = ["fp32"]
    if cc in _FAST_FP16_PASCAL_MAXWELL or cc >= (7, 0):
        out.append("fp16")
    if cc >= (8, 0):
        out.append("bf16")
    if cc >= (6, 1):
        out.append("int8")
    return out


def capabilities_for(cc: tuple[int, int], *, nvlink: bool = False, mig: bool = False) -> list[str]:
    """Named features a manifest or the placement can ask for: ``sm_XY`` and what it implies."""
    caps = [f"sm_{cc[0]}{cc[1]}"]
    if cc >= (7, 0):
        caps.append("tensor_cores")
    if cc >= (8, 0):
        caps.append("tf32")
    if cc >= (8, 9):  # Ada and Hopper: fp8 tensor cores
        caps.append("fp8")
    if nvlink:
        caps.append("nvlink")
    if mig:
        caps.append("mig")
    return caps


def pci_order(gpus: list[Gpu]) -> list[Gpu]:
    """GPUs in the order CUDA numbers them under ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.

    NVML's own index order is not promised to be stable, so it is sorted here rather than
    trusted (NVML formats every bus id the same way, ``00000000:3B:00.0``).
    """
    return sorted(gpus, key=lambda g: g.pci_bus_id.lower())


def _strtoul(s: str) -> int:
    """The leading decimal number of ``s`` as C's strtoul reads it (``"1gpu"`` → 1), or -1."""
    s = s.strip()
    sign, digits = 1, s
    if digits[:1] in ("+", "-"):
        sign, digits = (-1 if digits[0] == "-" else 1), digits[1:]
    n = len(digits) - len(digits.lstrip("0123456789"))
    return sign * int(digits[:n]) if n else -1


def visible(value: str | None, uuids: list[str]) -> list[int]:
    """Positions in ``uuids`` (the GPUs in CUDA's order) that CUDA_VISIBLE_DEVICES=``value``
    exposes, in the order CUDA numbers them (``cuda:0`` first).

    The same reading as CUDA and torch (``torch.cuda._parse_visible_devices``): an
    unset variable shows every GPU; an entry that is not a valid GPU ends the list there;
    a repeated GPU hides them all; ``GPU-`` entries match a UUID by unique prefix.
    """
    if value is None:
        return list(range(len(uuids)))
    out: list[int] = []
    if value.startswith("GPU-"):
        entries: list[str] = []
        for entry in value.split(","):
            if entry in entries:  # the same id twice hides every GPU
                return []
            if not entry.startswith("GPU-"):
                break
            entries.append(entry)
        for entry in entries:
            matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
            if len(matches) != 1:  # unknown or ambiguous: the list ends here
                break
            if matches[0] in out:
                return []
            out.append(matches[0])
        return out
    ordinals: list[int] = []
    for entry in value.split(","):  # "1gpu2,2ampere" reads as 1,2, as C's strtoul would
        n = _strtoul(entry)
        if n in ordinals:
            return []
        if n < 0:
            break
        ordinals.append(n)
    for n in ordinals:  # then the list ends at the first GPU that does not exist
        if n >= len(uuids):
            break
        out.append(n)
    return out


def driver_supports(driver_version: int, runtime: str | None) -> bool:
    """Whether a driver (NVML's ``nvmlSystemGetCudaDriverVersion``, e.g. 12040) can run
    torch's CUDA runtime (``torch.version.cuda``, e.g. "12.4").

    Since CUDA 11 a driver runs any runtime of its own major version or older (minor
    version compatibility), so the majors decide.
    """
    if not runtime:
        return False
    try:
        runtime_major = int(runtime.split(".")[0])
    except ValueError:
        return False
    return driver_version // 1000 >= runtime_major
