"""Multi-LoRA decoding: what mixing adapters in one batch costs, and what an adapter switch costs.

In process, on SmolLM2-135M-Instruct (fp32), through :class:`GenerationEngine` with an
:class:`AdapterCache` holding ``--adapters`` random LoRA adapters (r=8 on q_proj/v_proj,
seeded non-zero B: the shape the ``lora`` method trains). Each figure is greedy, ``--tokens``
new tokens per row (no end-of-turn, so every row runs the full length), a batch of ``--rows``
rows submitted together, best of ``--rounds``:

* **mixed**: every row on a different adapter (peft's mixed-batch forward);
* **one adapter**: every row on the same adapter;
* **base rows**: every row on ``__base__`` through the same PeftModel;
* **plain**: the base without peft at all (the single-model engine), for the wrapper's cost.

tokens/s = rows x tokens / wall time of the batch (prefill included). The switch cost is
``AdapterCache.ensure`` of an adapter just evicted: read from disk and injected into the
PeftModel, in ms (mean over ``--rows`` adapters). Usage:

    python bench/multilora.py [--rows 8] [--adapters 32] [--tokens 32] [--rounds 2] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from colabhive.runners.adapters import AdapterCache, wrap_base
from colabhive.runners.generation import TextStream, _pick
from colabhive.runners.generation_batch import GenerationEngine

BASE = Path(__file__).resolve().parent.parent / "models" / "smollm2-135m-instruct"
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "Name three colours of the rainbow.",
           "What is 2+2?", "Say hello in Spanish.", "Why is the sky blue?", "Give me a word that rhymes with cat.",
           "What do bees make?"]


class Inp(msgspec.Struct):
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0


def make_adapters(n: int, folder: Path) -> dict[str, Path]:
    """``n`` adapters from one PEFT model, its B matrices re-drawn (seeded) before each save."""
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    paths = {}
    for i in range(n):
        g = torch.Generator().manual_seed(i + 1)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        paths[f"a{i}"] = folder / f"a{i}"
        model.save_pretrained(paths[f"a{i}"])
    return paths


def run_batch(engine: GenerationEngine, tok: Any, mixtures: list[list[tuple[str, float]]], tokens: int) -> float:
    """Seconds for one batch of rows, all submitted before the engine admits any."""
    def ids(q: str) -> list[int]:
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    prompts = [ids(PROMPTS[i % len(PROMPTS)]) for i in range(len(mixtures))]
    t0 = time.perf_counter()
    with engine._lock:
        tickets = [engine.submit(p, Inp(max_tokens=tokens), TextStream(tok.decode, [], lambda _s: None), None,
                                 mixture=m) for p, m in zip(prompts, mixtures, strict=True)]
    outs = [t.wait(600) for t in tickets]
    dt = time.perf_counter() - t0
    assert all(o.usage.completion_tokens == tokens for o in outs)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--adapters", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(BASE)
    pick = lambda logits, inp, g: _pick(torch, logits, inp, g)  # noqa: E731
    dev = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_adapters(a.adapters, Path(tmp))
        peft_model = wrap_base(AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32).eval())
        cache = AdapterCache(peft_model, 1 << 40, paths)
        cache.ensure(paths)
        multi = GenerationEngine(peft_model, dev, frozenset(), pick, max_rows=64, adapters=cache)
        plain = GenerationEngine(AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32).eval(), dev,
                                 frozenset(), pick, max_rows=64)
        names = list(paths)
        cases: list[tuple[str, GenerationEngine, list[list[tuple[str, float]]]]] = [
            (f"{a.rows} rows, {a.rows} adapters (mixed)", multi, [[(names[i], 1.0)] for i in range(a.rows)]),
            (f"{a.rows} rows, one adapter", multi, [[(names[0], 1.0)]] * a.rows),
            (f"{a.rows} rows, base (__base__)", multi, [[]] * a.rows),
            (f"{a.rows} rows, plain base (no peft)", plain, [[]] * a.rows),
            (f"{a.rows} rows, k=2 mixtures", multi,
             [[(names[i], 0.5), (names[(i + 1) % len(names)], 0.5)] for i in range(a.rows)]),
        ]
        run_batch(plain, tok, [[]], 2)  # warm up both
        run_batch(multi, tok, [[(names[0], 1.0)]], 2)
        rows = []
        for label, engine, mixtures in cases:
            best = min(run_batch(engine, tok, mixtures, a.tokens) for _ in range(a.rounds))
            rows.append((label, a.rows * a.tokens / best, best))
        switch = []
        for name in names[: a.rows]:
            cache.budget = cache.bytes - 1  # the next ensure evicts the least recently used first
            cache.ensure([names[-1]])  # touch something else, evicting the LRU (not in use)
            cache.budget = 1 << 40
            victim = next(n for n in names if n not in {h["name"] for h in cache.held()})
            t0 = time.perf_counter()
            cache.ensure([victim])
            switch.append((time.perf_counter() - t0) * 1000)
        size = cache.held()[0]["bytes"]
    print(f"SmolLM2-135M fp32, torch threads {torch.get_num_threads()}, {a.adapters} adapters held "
          f"({size / 1e6:.2f} MB each), greedy, {a.tokens} new tokens/row, best of {a.rounds}")
    print(f"{'case':<36} {'tokens/s':>9} {'batch s':>8}")
    for label, tps, dt in rows:
        print(f"{label:<36} {tps:>9.1f} {dt:>8.2f}")
    print(f"adapter switch (load from disk into the PeftModel): {statistics.mean(switch):.1f} ms mean, "
          f"{min(switch):.1f}-{max(switch):.1f} ms over {len(switch)}")


if __name__ == "__main__":
    main()
