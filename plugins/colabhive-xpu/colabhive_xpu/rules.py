"""Pure decisions about Intel GPUs: which dtypes and capabilities a device's properties
earn, and the Level Zero affinity that pins a child process to one device. Properties are
read by attribute from anything shaped like ``torch.xpu.get_device_properties()``, so
every rule is testable without a GPU.
"""

from __future__ import annotations

from typing import Any

__all__ = ["capabilities_for", "dtypes_for", "has_xmx", "pin_env"]

MiB = 1 << 20
# Discrete parts with XMX engines, for a torch too old to report DPAS support itself.
# ("Intel(R) Arc(TM) Graphics" alone is the Meteor Lake iGPU, which has no XMX.)
_XMX_NAMES = ("arc(tm) a", "arc(tm) b", "data center gpu max", "data center gpu flex")


def has_xmx(props: Any) -> bool:
    """Whether the device has XMX matrix engines (DPAS): Arc A/B-series, Flex, Max (PVC), Xe2.

    torch reports it as ``has_subgroup_matrix_multiply_accumulate``; older torch did not,
    and then the product name decides.
    """
    flag = getattr(props, "has_subgroup_matrix_multiply_accumulate", None)
    if flag is not None:
        return bool(flag)
    name = str(getattr(props, "name", "")).lower()
    return any(n in name for n in _XMX_NAMES)


def dtypes_for(props: Any) -> list[str]:
    """Dtypes worth running in, fp32 first: fp16 where the device has it; bf16 and int8
    where XMX runs them natively (without XMX bf16 is converted, not computed, and is slower
    than fp32)."""
    out = ["fp32"]
    if getattr(props, "has_fp16", False):
        out.append("fp16")
    if has_xmx(props):
        out += ["bf16", "int8"]
    return out


def capabilities_for(props: Any) -> list[str]:
    """Named features: ``xmx``, ``tf32`` (DPAS on tf32), ``fp64`` (absent on Arc: it
    emulates fp64), ``atomic64`` and ``igpu`` for an integrated GPU sharing host memory."""
    caps = []
    if has_xmx(props):
        caps.append("xmx")
    if getattr(props, "has_subgroup_matrix_multiply_accumulate_tensor_float32", False):
        caps.append("tf32")
    if getattr(props, "has_fp64", False):
        caps.append("fp64")
    if getattr(props, "has_atomic64", False):
        caps.append("atomic64")
    if getattr(props, "is_integrated_gpu", False):
        caps.append("igpu")
    return caps


def pin_env(index: int, mask: str | None) -> dict[str, str]:
    """``ZE_AFFINITY_MASK`` that shows a child process only ``xpu:index`` of this process.

    When this process was itself started under a mask, its ``xpu:N`` is the mask's N-th
    entry (which may name a tile, ``0.1``); otherwise it is Level Zero device N. (torch
    hides an integrated GPU when a discrete one is present and Level Zero does not, so on
    a machine with both, start the node under an explicit mask.)
    """
    if not mask:
        return {"ZE_AFFINITY_MASK": str(index)}
    entries = [e.strip() for e in mask.split(",") if e.strip()]
    if index >= len(entries):
        raise ValueError(f"xpu:{index} is not in this process's ZE_AFFINITY_MASK={mask!r}")
    return {"ZE_AFFINITY_MASK": entries[index]}
