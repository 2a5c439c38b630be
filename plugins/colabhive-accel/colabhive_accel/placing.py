"""Putting a loaded torch module on an accelerator for serving, in the dtype placement chose.

Shared by the GPU backends (colabhive-cuda, colabhive-xpu): the steps are the same and only
the target string differs, so they live once, in this package, and are checked on the CPU.
"""

from __future__ import annotations

from typing import Any

from colabhive.plugins import DTYPES

__all__ = ["prepare"]


def _is_quantised(model: Any, torch: Any) -> bool:
    return any(
        isinstance(t, torch.Tensor) and (t.dtype == torch.int8 or t.is_quantized) for t in model.state_dict().values()
    )


def _channels_last_helps(model: Any) -> bool:
    """2-D convolution weights (4-D tensors) and no 3-D ones (5-D), which channels_last cannot hold."""
    dims = {p.dim() for p in model.parameters()}
    return 4 in dims and 5 not in dims


def prepare(model: Any, target: str, dtype: str) -> Any:
    """``model`` in inference mode on ``target`` in ``dtype``.

    - eval(): placement serves, so dropout and batch-norm statistics must be frozen.
    - fp32/fp16/bf16 are a cast of every floating tensor.
    - int8 is never a cast (that would destroy the weights): the runner must hand over a
      model it already quantised, which is only moved; a float model is refused rather
      than silently served in fp32.
    - 2-D convolution weights go channels-last, the layout tensor cores, cuDNN and
      oneDNN's XMX kernels prefer;
      models without them (transformers) are untouched.
    """
    import torch

    model = model.eval()
    if dtype == "int8":
        if not _is_quantised(model, torch):
            raise ValueError("int8 placement needs a model its runner already quantised; this one holds floats")
        return model.to(device=target)
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (expected one of {sorted(DTYPES)} or int8)")
    model = model.to(device=target, dtype=getattr(torch, DTYPES[dtype]))
    if _channels_last_helps(model):
        model = model.to(memory_format=torch.channels_last)
    return model
