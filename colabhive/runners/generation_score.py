"""Scoring a given assistant reply under the generation model: its mean negative log-likelihood.

A scoring input (generation's ``score``) never enters the continuous batch: it is one direct
forward pass over prompt + reply, in ``torch.inference_mode``, with the loss taken exactly as
the ``lora`` training method takes a row's (:meth:`~colabhive.training.methods.lora.LoraMethod._encode`):
the reply is ``tokenizer(reply + eos_token, add_special_tokens=False)``, and only its tokens
(the end-of-turn one included) are scored, each from the logits of the position before it.

Several scoring inputs of one call share a pass, **right-padded** with an attention mask: causal
attention never shows a real token the padding after it, and the default positions 0..n-1 are
each row's own, so a row's loss is what it gets alone (to float rounding). Passes are capped at
:data:`SCORE_TOKENS` padded tokens (a longer input goes alone), and only the logits from the
earliest reply onwards are computed (``logits_to_keep``): a long prompt costs no vocabulary-
sized rows. On a multi-LoRA model (a PeftModel) every row names ``"__base__"``: the base scores.

Threads: the passes hold the engine's ``model_lock``, as the engine's own passes and adapter
loads do, so a score never runs beside a pass that has peft's per-call adapter hooks on the
model's layers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import torch

from .base import Finished

__all__ = ["SCORE_TOKENS", "ScoreRow", "Scored", "finish", "score_rows"]

log = logging.getLogger("colabhive.node")

SCORE_TOKENS = 4096
"""Most padded tokens (rows × widest) in one scoring pass."""


@dataclass(slots=True)
class ScoreRow:
    prompt: list[int]
    reply: list[int]
    """The reply's ids, its end-of-turn token last: the tokens scored."""


def score_rows(model: Any, device: Any, rows: list[ScoreRow], lock: Any, wrapped: bool,
               pad_id: int) -> tuple[list[float], list[int]]:
    """Each row's mean NLL (natural log) of its reply tokens, and the rows of the pass it was in."""
    losses: list[float] = [0.0] * len(rows)
    sizes: list[int] = [1] * len(rows)
    for group in _plan(rows):
        for k, loss in zip(group, _pass(model, device, [rows[i] for i in group], lock, wrapped, pad_id), strict=True):
            losses[k] = loss
            sizes[k] = len(group)
    return losses, sizes


def _plan(rows: list[ScoreRow]) -> list[list[int]]:
    """Row indices grouped into passes, shortest first, while rows × widest fits SCORE_TOKENS."""
    groups: list[list[int]] = []
    for i in sorted(range(len(rows)), key=lambda i: len(rows[i].prompt) + len(rows[i].reply)):
        n = len(rows[i].prompt) + len(rows[i].reply)
        if groups and (len(groups[-1]) + 1) * n <= SCORE_TOKENS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _pass(model: Any, device: Any, rows: list[ScoreRow], lock: Any, wrapped: bool, pad_id: int) -> list[float]:
    width = max(len(r.prompt) + len(r.reply) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        seq = r.prompt + r.reply
        ids[k, : len(seq)] = torch.tensor(seq)
        mask[k, : len(seq)] = 1
    first = min(len(r.prompt) for r in rows) - 1  # the position whose logits predict the earliest reply token
    keep = width - first
    kw: dict[str, Any] = {"adapter_names": ["__base__"] * len(rows)} if wrapped else {}
    with lock, torch.inference_mode():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False,
                    logits_to_keep=keep, **kw)
        logits = out.logits  # [rows, keep, vocab]: positions first..width-1
        losses = []
        for k, r in enumerate(rows):
            p, n = len(r.prompt), len(r.prompt) + len(r.reply)
            row = logits[k, p - 1 - first : n - 1 - first].float()
            target = ids[k, p:n].to(row.device)
            nll = -torch.log_softmax(row, dim=-1).gather(1, target[:, None]).squeeze(1)
            losses.append(float(nll.mean().item()))
    return losses


class Scored:
    """A scoring input's handle, as :class:`~.generation_batch.Ticket` is a generation's: it is
    over when :meth:`GenerationRunner.submit` returns (``done`` has run), so ``cancel`` does nothing."""

    __slots__ = ("finished",)

    def __init__(self, finished: Finished) -> None:
        self.finished: Finished | None = finished

    def cancel(self) -> None:
        """Nothing to stop: it ended before its handle was returned."""

    def wait(self, timeout: float | None = None) -> msgspec.Struct:
        f = self.finished
        assert f is not None
        if f.error is not None:
            raise f.error
        assert f.output is not None
        return f.output


def finish(output: msgspec.Struct | None, error: BaseException | None, t0: float, batch_size: int,
           tokens: int, done: Callable[[Finished], None] | None) -> Scored:
    """The Finished of one scoring input, handed to ``done`` (if any) and kept on its handle."""
    f = Finished(output=output, error=error, run_ms=(time.perf_counter() - t0) * 1000,
                 batch_size=float(batch_size), tokens=tokens)
    if done is not None:
        try:
            done(f)
        except Exception:
            log.exception("a score's done callback failed")
    return Scored(f)

