"""lora: a PEFT LoRA adapter on a causal chat model (SmolLM2-135M-Instruct), on prompt/response pairs.

Rows are rendered with the model's own chat template, exactly as the generation runner renders
a call (the template's default system prompt included), and only the response tokens and the
end-of-turn token are scored: the adapter learns to answer, not to repeat questions. The base
weights stay frozen in fp32; only the low-rank ``lora_A``/``lora_B`` matrices train, so with
``muon`` every trainable tensor is a hidden 2-D matrix.

Export is a PEFT adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``,
a few hundred kB) whose manifest names the base weights in ``source.path`` and the adapter in
``source.adapter``: the generation runner loads the base and applies the adapter on top.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..errors import TrainingError
from .base import Method, TorchTrainer, register

__all__ = ["LoraHParams", "LoraMethod", "LoraTrainer", "METHOD"]

IGNORE = -100
CARRIED_OPTIONS = ("context_tokens",)
"""Base manifest options that describe the model, so the adapter version keeps them."""


class LoraHParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lr: Annotated[float, Meta(gt=0, le=1)] = 2e-4
    batch_size: Annotated[int, Meta(ge=1, le=1024)] = 8
    seq_len: Annotated[int, Meta(ge=8, le=8192, description="Tokens per example; longer ones are cut.")] = 96
    r: Annotated[int, Meta(ge=1, le=256, description="LoRA rank.")] = 8
    alpha: Annotated[float, Meta(gt=0, description="LoRA scale numerator: the update is alpha/r * BA.")] = 16.0
    dropout: Annotated[float, Meta(ge=0, lt=1)] = 0.05
    target_modules: Annotated[list[str], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["q_proj", "v_proj"]
    )
    """Linear layers (by name) that get an adapter."""
    weight_decay: Annotated[float, Meta(ge=0)] = 0.0
    warmup_steps: Annotated[int, Meta(ge=0)] = 0
    schedule: Literal["constant", "cosine"] = "constant"
    max_grad_norm: Annotated[float, Meta(gt=0)] = 1.0
    eval_max_tokens: Annotated[int, Meta(ge=1, le=512, description="Tokens generated per eval prompt.")] = 32

    def __post_init__(self) -> None:
        if any(not m for m in self.target_modules):
            raise ValueError("`hparams.target_modules` must not contain an empty name")


class LoraTrainer(TorchTrainer):
    def build(self) -> list[tuple[str, Any]]:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch, hp = self.torch, self.hparams
        assert self.base is not None
        if not (self.base.dir / "config.json").is_file():
            raise TrainingError(f"{self.base.dir}: no config.json; lora needs the base in transformers format")
        self.tokenizer = AutoTokenizer.from_pretrained(self.base.dir)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(self.dtype, torch.float32)
        model = AutoModelForCausalLM.from_pretrained(self.base.dir, dtype=dtype)
        config = LoraConfig(r=hp.r, lora_alpha=hp.alpha, lora_dropout=hp.dropout,
                            target_modules=list(hp.target_modules), task_type="CAUSAL_LM")
        try:
            self.model = get_peft_model(model, config).to(self.device)
        except ValueError as exc:  # peft: a target module that the model does not have
            raise TrainingError(str(exc), field="hparams.target_modules") from None
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def _prompt_ids(self, prompt: str) -> list[int]:
        """As :meth:`GenerationRunner._prompt_ids` renders a one-message call."""
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, row: dict[str, Any]) -> tuple[list[int], list[int]]:
        """(input ids, labels): the prompt's labels are ignored, the answer's and its end token scored."""
        prompt = self._prompt_ids(str(row["prompt"]))
        answer = list(self.tokenizer(str(row["response"]) + self.tokenizer.eos_token,
                                     add_special_tokens=False)["input_ids"])
        ids = (prompt + answer)[: self.hparams.seq_len]
        labels = ([IGNORE] * len(prompt) + answer)[: self.hparams.seq_len]
        return ids, labels

    def train_mode(self) -> None:
        self.model.train()

    def loss(self, batch: list[dict[str, Any]]) -> tuple[Any, int]:
        torch = self.torch
        encoded = [self._encode(r) for r in batch]
        width = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (i, lab) in enumerate(encoded):
            ids[k, : len(i)] = torch.tensor(i)
            labels[k, : len(lab)] = torch.tensor(lab)
            mask[k, : len(i)] = 1
        if not (labels != IGNORE).any():
            raise TrainingError(f"hparams.seq_len {self.hparams.seq_len} cuts off every answer", field="hparams.seq_len")
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         labels=labels.to(self.device))
        return out.loss, int(mask.sum())

    # ---- evaluation and export -----------------------------------------------------------------
    def eval_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"input": {"messages": [{"role": "user", "content": str(r["prompt"])}],
                           "max_tokens": self.hparams.eval_max_tokens},
                 "expected": str(r["response"])} for r in rows]

    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Greedy answers from the adapted model, one input at a time as the runner generates."""
        torch = self.torch
        self.model.eval()
        end = {self.tokenizer.eos_token_id}
        out = []
        for inp in inputs:
            ids = self._prompt_ids(inp["messages"][-1]["content"])
            with torch.inference_mode():
                gen = self.model.generate(input_ids=torch.tensor([ids], device=self.device),
                                          attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
                                          max_new_tokens=inp["max_tokens"], do_sample=False,
                                          eos_token_id=list(end), pad_token_id=self.pad_id)
            new = [t for t in gen[0, len(ids):].tolist() if t not in end]
            text = self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            out.append({"text": text})
        return out

    def export(self, out: Any) -> dict[str, Any]:
        assert self.base is not None
        self.model.save_pretrained(out)
        options = {k: v for k, v in self.base.options.items() if k in CARRIED_OPTIONS}
        # the base as its own manifest names it: a package every node has, not this node's path to it
        base = {"package": self.base.source.package} if self.base.source.package else {"path": str(self.base.dir.resolve())}
        return {"source": base | {"adapter": "."}, "options": options}


@register
class LoraMethod(Method):
    name = "lora"
    task = "generation"
    HParams = LoraHParams
    Trainer = LoraTrainer
    roles = ("prompt", "response")
    needs_base = True
    base_tasks = frozenset({"generation"})
    metrics = frozenset({"contains", "chrf"})

    @classmethod
    def eval_field(cls, metric: str, trainer: Any = None) -> str:
        return "text"


METHOD = LoraMethod
