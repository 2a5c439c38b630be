"""The rows of :class:`~.generation_batch.GenerationEngine`'s batch, and the surgery on their
shared key/value cache: newcomers are inserted, rows that leave are dropped, columns that have
become padding everywhere are trimmed. Engine thread only; no locking here.

The layout: rows are **left-padded** to one width, so every row's newest token sits in the
last column and one forward pass appends one column for all of them. Each row carries its own
next position (its real length, padding not counted) and a 2-D attention mask with zeros over
its padding, so its keys are rotated and attended exactly as if it ran alone.

Newcomers arrive the other way round: prefilled together, their prompts are **right-padded**
(see :func:`prefill_ids`), so every real token sits at the position and sees exactly the
tokens it would alone (causal attention never looks right, at the padding), with no mask and
no position ids to get wrong. :meth:`Batch.add` turns them left-padded on the way in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

if TYPE_CHECKING:
    from .base import Finished
    from .generation_batch import Ticket

__all__ = ["Batch", "Row", "mix_logits", "prefill_ids", "repeat_cache", "stack_caches"]


@dataclass(slots=True, eq=False)
class Row:
    """One request's state, in the batch or waiting to join it."""

    prompt: list[int]
    inp: Any
    text: Any  # TextStream
    generator: Any | None
    done: Callable[[Finished], None]
    ticket: Ticket | None = None
    t0: float = field(default_factory=time.perf_counter)
    reach: int = 0
    """Its length at the longest: prompt plus max_tokens."""
    count: int = 0
    """Tokens produced so far (the end-of-turn token included)."""
    over: bool = False
    """Its ``done`` has run; the row only waits to be dropped from the batch."""
    steps: int = 0
    row_steps: int = 0
    adapters: tuple[str, ...] = ()
    """Multi-LoRA engine only: the adapter of each of its physical rows (one per mixture
    member, all fed the same tokens); empty: one row on the base."""
    weights: tuple[float, ...] = ()
    """The mixture weight of each adapter (summing to 1): its next token is drawn from
    Σ wᵢ·softmax(logitsᵢ)."""
    dress: Callable[[Any], Any] | None = None
    """Turns its GenerationOutput into the runner's own output (an expert group adds who answered)."""

    @property
    def width(self) -> int:
        """Physical rows it takes in the batch: one per adapter of its mixture."""
        return max(1, len(self.adapters))


def repeat_cache(cache: Any, rows: int) -> DynamicCache:
    """A new cache holding ``rows`` copies of ``cache``'s one row (the shared prefix's): the
    prefill appends to it in place, so the original must never be handed to the model."""
    past = DynamicCache()
    for i, layer in enumerate(cache.layers):
        past.update(layer.keys.repeat(rows, 1, 1, 1), layer.values.repeat(rows, 1, 1, 1), i)
    return past


def stack_caches(caches: list[Any]) -> DynamicCache:
    """A new cache whose row i is ``caches[i]``'s one row (prefixes read under different
    adapters); all have the same length. Like :func:`repeat_cache`, the originals are never
    handed to the model."""
    past = DynamicCache()
    for i, layers in enumerate(zip(*(c.layers for c in caches), strict=True)):
        past.update(torch.cat([layer.keys for layer in layers]), torch.cat([layer.values for layer in layers]), i)
    return past


def mix_logits(logits: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """One row of logits for a mixture: ``log Σ wᵢ·softmax(logitsᵢ)`` over the ``[k, vocab]``
    rows of its members (c-BTM). Greedy is the argmax of the mixture; sampling at temperature T
    draws from ``mixture^(1/T)`` (what softmax of these logits over T is), top-p on top."""
    w = torch.tensor(weights, dtype=torch.float32, device=logits.device)[:, None]
    return (torch.softmax(logits.float(), dim=-1) * w).sum(0).log()


def prefill_ids(suffixes: list[list[int]], device: Any) -> tuple[torch.Tensor, int | torch.Tensor]:
    """Input ids for prefilling ``suffixes`` together (right-padded with token 0: causal
    attention never lets a real token see it) and the ``logits_to_keep`` that keeps each row's
    last real position only. Rows of one length (a lone newcomer among them) get exactly the
    forward a lone request gets: no padding and ``logits_to_keep=1``."""
    width = max(len(s) for s in suffixes)
    ids = torch.tensor([s + [0] * (width - len(s)) for s in suffixes], device=device)
    if all(len(s) == width for s in suffixes):
        return ids, 1
    return ids, torch.tensor([[len(s) - 1] for s in suffixes], device=device)


class Batch:
    """The tensors of the rows decoding together: their shared key/value cache (left-padded
    to one width), attention mask, next positions and newest tokens."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # [rows, width], 1 over real tokens
        self.pos: torch.Tensor | None = None  # [rows]: where each row's next token goes
        self.last: torch.Tensor | None = None  # [rows]: each row's newest token

    @property
    def rows(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def add(self, cache: Any, index: list[int], lengths: list[int], tokens: list[int]) -> None:
        """Append rows prefilled together: row ``index[i]`` of ``cache`` (right-padded, its
        ``lengths[i]`` tokens first) joins with its first token ``tokens[i]``."""
        if not index:
            return
        new = max(lengths)
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        for layer in cache.layers:  # left-pad each newcomer to the newcomers' width
            keys.append(torch.cat([F.pad(layer.keys[i:i + 1, :, :n], (0, 0, new - n, 0))
                                   for i, n in zip(index, lengths, strict=True)]))
            values.append(torch.cat([F.pad(layer.values[i:i + 1, :, :n], (0, 0, new - n, 0))
                                     for i, n in zip(index, lengths, strict=True)]))
        mask = torch.tensor([[0] * (new - n) + [1] * n for n in lengths], dtype=torch.long, device=self.device)
        pos = torch.tensor(lengths, device=self.device)
        last = torch.tensor(tokens, device=self.device)
        if self.cache is None:
            self.cache = DynamicCache()
            for i, (k, v) in enumerate(zip(keys, values, strict=True)):
                self.cache.update(k, v, i)
            self.mask, self.pos, self.last = mask, pos, last
            return
        assert self.mask is not None and self.pos is not None and self.last is not None
        width = int(self.mask.shape[1])
        if new > width:  # a newcomer is the longest: everyone else gets more padding
            grow = new - width
            for layer in self.cache.layers:
                layer.keys = F.pad(layer.keys, (0, 0, grow, 0))
                layer.values = F.pad(layer.values, (0, 0, grow, 0))
            self.mask = F.pad(self.mask, (grow, 0))
            width = new
        pad = width - new
        for mine, k, v in zip(self.cache.layers, keys, values, strict=True):
            mine.keys = torch.cat([mine.keys, F.pad(k, (0, 0, pad, 0))])
            mine.values = torch.cat([mine.values, F.pad(v, (0, 0, pad, 0))])
        self.mask = torch.cat([self.mask, F.pad(mask, (pad, 0))])
        self.pos = torch.cat([self.pos, pos])
        self.last = torch.cat([self.last, last])

    def keep(self, indices: list[int]) -> None:
        """Keep only these rows (in this order), then trim columns that are padding in all."""
        assert self.mask is not None and self.pos is not None and self.last is not None
        if not indices:
            self.cache = self.mask = self.pos = self.last = None
            return
        idx = torch.tensor(indices, device=self.device)
        mask = self.mask.index_select(0, idx)
        start = int(mask.any(0).int().argmax())  # first column some row still uses
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, idx)[:, :, start:]
            layer.values = layer.values.index_select(0, idx)[:, :, start:]
        self.mask = mask[:, start:]
        self.pos = self.pos.index_select(0, idx)
        self.last = self.last.index_select(0, idx)

    def step(self, model: Any, **extra: Any) -> torch.Tensor:
        """One forward pass for every row: logits ``[rows, vocab]`` for each row's next token
        (``extra``: the multi-LoRA engine's ``adapter_names``, one per row)."""
        assert self.mask is not None and self.pos is not None and self.last is not None
        self.mask = F.pad(self.mask, (0, 1), value=1)
        out = model(
            input_ids=self.last[:, None], attention_mask=self.mask, position_ids=self.pos[:, None],
            past_key_values=self.cache, use_cache=True, logits_to_keep=1, **extra,
        )
        self.cache = out.past_key_values
        self.pos = self.pos + 1
        return out.logits[:, -1]
