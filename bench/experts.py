"""Core + experts: one LoRA expert per topic, routed by centroid, against one dense LoRA at equal steps.

    python bench/experts.py [--steps 120] [--lrs 1e-3,2e-3,4e-3] [--batch 4] [--seq-len 96] [--r 8]
                            [--alpha 16] [--test-frac 0.2] [--dev-frac 0.1] [--max-test-rows 0]
                            [--serve-calls 42] [--threads 1]

About 25-30 minutes on the 2-core box with the defaults (30 in the recorded run, on a box another
session's model build kept loaded; training is most of it: three dense jobs and three groups of 21
children, 1 torch thread per node); ``--lrs 1e-3`` alone takes about a third.

**Data.** chatterbot-corpus (BSD-3), every English topic file the installed package ships (21), as
``example_data.chatterbot_qa`` reads them: question/answer pairs with their topic. Exact duplicate
pairs within a topic are dropped. Per topic, a seeded shuffle holds out ``--test-frac`` (at least one
row) as the **test** split, which never leaves this process (it is not uploaded to the hive); of the
rest ``--dev-frac`` is the **dev** split, uploaded only as the jobs' ``eval.dataset`` (so it is never
trained on) and used here to choose the learning rate; the remainder is the **training** set,
uploaded once and trained on by both sides.

**Training, on one real hive** (``tests/hivectl.py``: a gateway and two node processes,
``torch_threads`` 1 each, in a temp dir on free ports; node-a also serves ``minilm-embed``, which the
gateway needs to partition), with the same ``hparams`` on both sides (r, alpha, batch, seq_len, lr,
the lora method's defaults otherwise: AdamW, constant schedule, dropout 0.05, q/v projections):

- **dense**: one ``lora`` job on every training row;
- **experts**: one ``experts`` job, partition ``column = "topic"`` with ``min_size = 1`` (one expert
  per topic, nothing merged; a merge would be printed), ``steps = "proportional"``,
  ``budget.max_steps = --steps``, ``min_steps = 1``. The group's real total (the floor of one step
  can lift a tiny topic) is read off a dry run first and the dense job gets exactly that many
  steps, so both sides take the same number of optimizer steps on batches of the same size.

Each value of ``--lrs`` trains both sides (the same grid for both). The dense jobs are submitted
together, so with two or more values two of them train side by side, one per node (as the group's
children do); each experts job runs alone on the hive, its children spread over both nodes. Each
side's lr is the one with the lowest dev NLL (the experts routed k=1, as served); with one value
in ``--lrs`` there is no choice to make and the table says so. The table shows the dev NLL of every
value, so an optimum at an edge of the grid is visible: in the recorded run (``bench/RESULTS.md``)
the experts' best was the default grid's top (4e-3), and a second run with ``--lrs 4e-3,8e-3``
(same seed: its 4e-3 figures were identical) found 8e-3 worse on both sides. Pass
``--lrs 1e-3,2e-3,4e-3,8e-3`` to see both optima inside one run (about 8 minutes more).

**Evaluation, in this process** (after training; the hive's nodes sit idle), on the test rows:
the adapters are read from the gateway's state dir (``<state>/trained/<name>-<version>/``, where a
landed job's artifact is unpacked; each member's ``artifact`` sha256 is checked against
``<state>/artifacts/``) into one PeftModel (``runners.adapters``: ``wrap_base`` +
``AdapterCache``, as a node serving the group holds them), and every score is the reply's per-token
NLL under the chat template exactly as the lora method trains on a row and as generation's score
mode scores one (prompt = the one-message chat template with its default system prompt; reply =
``answer + eos``, every reply token scored from the position before it; checked against
``generation_score.score_rows`` on the base, printed as the scoring check). For each row:

- **(a) base**: SmolLM2-135M-Instruct, no adapter;
- **(b) dense**: the dense adapter;
- **(c1) routed k=1**: the member whose centroid is nearest by cosine to the question's embedding,
  with the group's own encoder (its manifest's ``experts.embed``, ``MeanPooledEncoder`` in fp32 as
  ``ExpertsRunner`` loads it) and the registered manifest's centroids;
- **(c2) routed k=2**: the top two members mixed token by token, teacher-forced:
  ``-log sum_i w_i p_i(y_t)``, ``w = softmax(cos / temperature)`` with the manifest's temperature
  (what the served group's k=2 mixture decodes from);
- **(d) oracle**: the member trained on the row's own topic.

NLL is token-weighted (total NLL over total reply tokens) per topic and overall; perplexity =
exp(NLL). Route acc = share of test rows whose k=1 member is their own topic's. The bracketed range
after an overall difference is a paired bootstrap (2000 resamples of test rows) 95 % interval.

**Wall times**: a job's run wall is lease to landed (``started_at`` to ``finished_at``: model load,
steps, eval, export, upload, registration); the group's wall is from the submit call (which
embeds every prompt through the hive to partition) to the group registered as one function.

**Serving check** (``--serve-calls``, 0 skips it): a third node (``node-c``) serves the chosen group
alone; after one warm-up call, ``--serve-calls`` greedy calls (16 tokens) of test questions, one per
topic in turn, through ``POST /v1/fn/<group>``: p50 latency, which member answered, and whether it is
the member this process's routing picked. Each member's first use loads its adapter (cold).

No assertions: it prints the figures whichever way they fall, and writes them to ``--out``
(``bench/out/experts-<UTC stamp>/``: ``table.md``, ``summary.json``, the hive's logs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
# the gateway and nodes run this checkout's code, as this process does
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

BASE_DIR = REPO / "models" / "smollm2-135m-instruct"
COLUMNS = {"prompt": "question", "response": "answer"}
DONE = ("succeeded", "failed", "cancelled")
DENSE, GROUP = "bench-dense", "bench-experts"
Rows = list[dict[str, Any]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=120,
                   help="the group's budget.max_steps; dense gets the group's real total (default 120)")
    p.add_argument("--lrs", default="1e-3,2e-3,4e-3",
                   help="comma-separated lr grid, the same for both sides (default 1e-3,2e-3,4e-3)")
    p.add_argument("--batch", type=int, default=4, help="examples per step, both sides (default 4)")
    p.add_argument("--seq-len", type=int, default=96, help="tokens per training example (default 96)")
    p.add_argument("--r", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha (default 16)")
    p.add_argument("--checkpoint-every", type=int, default=50,
                   help="steps between checkpoints, both sides (default 50)")
    p.add_argument("--test-frac", type=float, default=0.2, help="held-out test share per topic (default 0.2)")
    p.add_argument("--dev-frac", type=float, default=0.1, help="dev share of the rest per topic (default 0.1)")
    p.add_argument("--max-test-rows", type=int, default=0,
                   help="score at most this many test rows per topic (0: all)")
    p.add_argument("--seed", type=int, default=0, help="splits and the jobs' seed (default 0)")
    p.add_argument("--temperature", type=float, default=0.1, help="the group's route temperature (default 0.1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the in-process scoring (default 1: on a shared 2-core box a second "
                        "thread that loses its core to another process makes each pass slower, not faster)")
    p.add_argument("--serve-calls", type=int, default=42,
                   help="calls in the serving check, cycling over the topics (default 42; 0: skip)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default bench/out/experts-<stamp>)")
    args = p.parse_args(argv)
    args.lr_grid = [float(x) for x in args.lrs.split(",") if x.strip()]
    if not args.lr_grid:
        p.error("--lrs needs at least one value")
    return args


# ---- data ------------------------------------------------------------------------------------
def english_topics() -> tuple[str, ...]:
    """Every English topic file chatterbot-corpus ships (the names ``chatterbot_qa`` takes)."""
    from colabhive.recipes.provenance import package_file

    folder = package_file("chatterbot_corpus", "data/english")
    return tuple(sorted(p.stem for p in folder.glob("*.yml")))


@dataclass(slots=True)
class Splits:
    train: dict[str, Rows]
    dev: dict[str, Rows]
    test: dict[str, Rows]
    dropped: dict[str, int]
    """Exact duplicate pairs dropped per topic."""


def make_splits(topics: tuple[str, ...], test_frac: float, dev_frac: float, seed: int) -> Splits:
    """Per topic: duplicates dropped, a seeded shuffle, test first, then dev, the rest training."""
    from colabhive.training.example_data import chatterbot_qa

    out = Splits({}, {}, {}, {})
    for topic in topics:
        raw = chatterbot_qa((topic,))
        rows = list({(r["question"], r["answer"]): r for r in raw}.values())
        out.dropped[topic] = len(raw) - len(rows)
        random.Random(f"{seed}:{topic}").shuffle(rows)
        n_test = max(1, round(len(rows) * test_frac))
        rest = rows[n_test:]
        n_dev = round(len(rest) * dev_frac)
        out.test[topic], out.dev[topic], out.train[topic] = rows[:n_test], rest[:n_dev], rest[n_dev:]
    return out


def flat(by_topic: dict[str, Rows]) -> Rows:
    return [r for rows in by_topic.values() for r in rows]


# ---- the hive ------------------------------------------------------------------------------------
def upload(h: Any, rows: Rows, folder: Path, name: str) -> str:
    from colabhive.training import example_data

    path = folder / name
    example_data.write_dataset(rows, path)
    r = h.http.post("/v1/datasets", content=path.read_bytes(), headers={"content-type": "application/jsonl"})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"upload {name}: {r.status_code} {r.text}")
    return str(r.json()["id"])


def lora_hparams(args: argparse.Namespace, lr: float) -> dict[str, Any]:
    return {"lr": lr, "batch_size": args.batch, "seq_len": args.seq_len, "r": args.r, "alpha": args.alpha,
            "eval_max_tokens": 4}


def common_spec(args: argparse.Namespace, train_id: str, dev_id: str) -> dict[str, Any]:
    """What both sides share. The job's own eval (one dev row, 4 greedy tokens, chrF) is only there
    because a job must have one; the bench scores NLL itself."""
    return {"base": "smollm2-chat", "optimizer": "adamw", "seed": args.seed,
            "checkpoint_every": args.checkpoint_every,
            "dataset": {"id": train_id, "columns": COLUMNS},
            "eval": {"dataset": dev_id, "metric": "chrf", "threshold": 0.0, "max_rows": 1},
            "hardware": {"device_kinds": ["cpu"], "min_memory_mb": 1024, "dtypes": ["fp32"]}}


def experts_spec(args: argparse.Namespace, common: dict[str, Any], lr: float, version: str) -> dict[str, Any]:
    return common | {
        "method": "experts", "output": f"{GROUP}@{version}", "budget": {"max_steps": args.steps},
        "hparams": {"partition": {"strategy": "column", "column": "topic", "min_size": 1},
                    "steps": "proportional", "min_steps": 1,
                    "route": {"k": 1, "temperature": args.temperature},
                    "expert_hparams": lora_hparams(args, lr)},
    }


def dense_spec(args: argparse.Namespace, common: dict[str, Any], lr: float, version: str,
               steps: int) -> dict[str, Any]:
    return common | {"method": "lora", "output": f"{DENSE}@{version}", "budget": {"max_steps": steps},
                     "hparams": lora_hparams(args, lr)}


def submit(h: Any, spec: dict[str, Any], dry: bool = False) -> dict[str, Any]:
    r = h.http.post("/v1/jobs" + ("?dry_run=true" if dry else ""), json=spec, timeout=900)
    if r.status_code not in (200, 202):
        raise RuntimeError(f"submit {spec['output']}: {r.status_code} {r.text}")
    return dict(r.json())


def wait_done(h: Any, job_id: str, timeout: float = 7200) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = h.http.get(f"/v1/jobs/{job_id}").json()
        if view["status"] in DONE:
            if view["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} ended {view['status']}: {view.get('error')}\n{h.all_logs()}")
            return dict(view)
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} not done in {timeout} s")


def job_record(h: Any, job_id: str) -> dict[str, Any]:
    """A finished job's timing: run wall (lease → landed), queue, nodes, steps and their compute."""
    v = h.http.get(f"/v1/jobs/{job_id}").json()
    points = h.http.get(f"/v1/jobs/{job_id}/metrics").json()["points"]
    return {"job": job_id, "output": v["output"], "steps": v["step"], "created_at": v["created_at"],
            "started_at": v["started_at"], "finished_at": v["finished_at"],
            "run_s": v["finished_at"] - v["started_at"], "queued_s": v["started_at"] - v["created_at"],
            "nodes": [a["node"] for a in v["attempts"]], "step_s": sum(p.get("step_s", 0.0) for p in points),
            "final_loss": points[-1]["loss"] if points else None}


def beside(rec: dict[str, Any], others: list[dict[str, Any]]) -> float:
    """Share of ``rec``'s run during which another training job ran too."""
    a, b = rec["started_at"], rec["finished_at"]
    spans = sorted((max(a, o["started_at"]), min(b, o["finished_at"])) for o in others if o is not rec)
    covered, end = 0.0, a
    for s, e in spans:
        s = max(s, end)
        if e > s:
            covered, end = covered + e - s, e
    return covered / max(b - a, 1e-9)


# ---- scoring ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Item:
    prompt: list[int]
    reply: list[int]
    adapter: str
    """``__base__`` or an adapter name held by the PeftModel."""


class Scorer:
    """The base wrapped as a PeftModel with every adapter loaded, as a node serving a group holds them."""

    def __init__(self, adapters: dict[str, Path]) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from colabhive.runners.adapters import AdapterCache, wrap_base

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(BASE_DIR)
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        base = AutoModelForCausalLM.from_pretrained(BASE_DIR, dtype=torch.float32).eval()
        self.model = wrap_base(base)
        self.cache = AdapterCache(self.model, 1 << 40, adapters)
        self.cache.ensure(list(adapters))
        held = {a["name"]: a["bytes"] for a in self.cache.held()}
        empty = [n for n in adapters if not held.get(n)]
        if empty:  # peft's mixed batch would silently use the base for an adapter it does not hold
            raise RuntimeError(f"adapters not loaded: {empty}")

    def prompt_ids(self, question: str) -> list[int]:
        """As ``GenerationRunner._prompt_ids`` renders a one-message call (and the lora method trains)."""
        text = self.tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                            add_generation_prompt=True)
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def reply_ids(self, answer: str) -> list[int]:
        """As ``GenerationRunner._reply_ids``: the answer and the end-of-turn token."""
        return list(self.tok(answer + self.tok.eos_token, add_special_tokens=False)["input_ids"])

    def logprobs(self, items: list[Item]) -> list[np.ndarray]:
        """Each item's per-token log-probabilities of its reply (natural log). Items are grouped by
        adapter (a pass of one adapter skips peft's per-adapter sub-batching), then shortest first
        while rows x widest fits ``generation_score.SCORE_TOKENS``; right-padded, as score mode."""
        from colabhive.runners.generation_score import SCORE_TOKENS

        out: list[np.ndarray] = [np.zeros(0)] * len(items)
        def key(i: int) -> tuple[str, int]:
            return items[i].adapter, len(items[i].prompt) + len(items[i].reply)

        order = sorted(range(len(items)), key=key)
        group: list[int] = []
        for i in order:
            n = len(items[i].prompt) + len(items[i].reply)
            if group and (items[group[0]].adapter != items[i].adapter or (len(group) + 1) * n > SCORE_TOKENS):
                self._pass(items, group, out)
                group = []
            group.append(i)
        if group:
            self._pass(items, group, out)
        return out

    def _pass(self, items: list[Item], group: list[int], out: list[np.ndarray]) -> None:
        torch = self.torch
        rows = [items[i] for i in group]
        width = max(len(r.prompt) + len(r.reply) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            seq = r.prompt + r.reply
            ids[k, : len(seq)] = torch.tensor(seq)
            mask[k, : len(seq)] = 1
        first = min(len(r.prompt) for r in rows) - 1  # the position whose logits predict the earliest reply token
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=width - first,
                                adapter_names=[r.adapter for r in rows]).logits
            for k, (i, r) in enumerate(zip(group, rows, strict=True)):
                p, n = len(r.prompt), len(r.prompt) + len(r.reply)
                lp = torch.log_softmax(logits[k, p - 1 - first : n - 1 - first].float(), dim=-1)
                out[i] = lp.gather(1, ids[k, p:n][:, None]).squeeze(1).numpy().astype(np.float64)

    def check_against_repo(self, items: list[Item]) -> float:
        """Max |mean NLL here - generation_score.score_rows| on base items (the served score mode)."""
        from colabhive.runners.generation_score import ScoreRow, score_rows

        mine = [-float(lp.mean()) for lp in self.logprobs(items)]
        theirs, _ = score_rows(self.model, self.torch.device("cpu"), [ScoreRow(i.prompt, i.reply) for i in items],
                               threading.Lock(), True, self.pad_id)
        return max(abs(a - b) for a, b in zip(mine, theirs, strict=True))


class Router:
    """The served group's routing (``ExpertsRunner.route``): its encoder, its centroids and temperature."""

    def __init__(self, manifest: Any) -> None:
        import msgspec
        import torch

        from colabhive.runners.embedding import MeanPooledEncoder
        from colabhive.wire import Device

        self.torch = torch
        self.embed = manifest.experts.embed
        encoder_manifest = msgspec.structs.replace(manifest, source=self.embed, options={})
        self.encoder = MeanPooledEncoder(encoder_manifest, Device(kind="cpu"), "fp32")

    def routes(self, manifest: Any, texts: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Per text, the group's top ``k`` members and their weights, heaviest first:
        cosine to the unit centroids, softmax(cos / temperature) over the top k."""
        torch, experts = self.torch, manifest.experts
        if experts.embed != self.embed:
            raise RuntimeError(f"{manifest.ref} routes with another encoder ({experts.embed})")
        centroids = torch.nn.functional.normalize(torch.tensor([m.centroid for m in experts.members]), dim=1)
        names = [m.name for m in experts.members]
        vecs = torch.cat([self.encoder.encode(texts[i : i + 64]).float().cpu() for i in range(0, len(texts), 64)])
        out = []
        for cos in (vecs @ centroids.T).tolist():
            top = sorted(range(len(cos)), key=lambda i: -cos[i])[:k]
            w = torch.softmax(torch.tensor([cos[i] for i in top]) / experts.temperature, dim=0).tolist()
            out.append([(names[i], wi) for i, wi in zip(top, w, strict=True)])
        return out


def group_files(state: Path, ref: str) -> tuple[Any, dict[str, Path]]:
    """The registered group's manifest and each member's adapter directory in the gateway's state."""
    from colabhive.manifests import read_manifest

    name, version = ref.split("@")
    manifest, problems = read_manifest(state / "trained" / f"{name}-{version}" / "manifest.toml")
    if manifest is None or manifest.experts is None:
        raise RuntimeError(f"{ref}: no experts manifest ({problems})")
    dirs = {}
    for m in manifest.experts.members:
        folder = state / "trained" / f"{m.name}-{version}"
        tar = state / "artifacts" / f"{m.artifact}.tar"
        if not tar.is_file() or not (folder / "adapter_config.json").is_file():
            raise RuntimeError(f"{m.name}: artifact {m.artifact[:12]} or its unpacked adapter is missing")
        dirs[m.name] = folder
    return manifest, dirs


def nll_rows(lps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(per-row total NLL, per-row tokens)."""
    return np.array([-lp.sum() for lp in lps]), np.array([len(lp) for lp in lps], dtype=np.float64)


def mixture(lps: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Per-token log of sum_i w_i p_i(y_t)."""
    stack = np.stack([np.log(w) + lp for w, lp in zip(weights, lps, strict=True)])
    return np.logaddexp.reduce(stack, axis=0)


def bootstrap(a: np.ndarray, b: np.ndarray, tokens: np.ndarray, seed: int, n: int = 2000) -> tuple[float, float]:
    """95 % interval of (sum a - sum b) / sum tokens over row resamples (paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    d = (a[idx].sum(1) - b[idx].sum(1)) / tokens[idx].sum(1)
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


# ---- serving check ------------------------------------------------------------------------------------
def serve_check(h: Any, ref: str, landed_at: float, questions: list[tuple[str, str, str]],
                calls: int) -> dict[str, Any]:
    """Greedy calls to the group through the gateway: latency, who answered, agreement with this
    process's routing. ``questions``: (topic, question, member this process routes it to)."""
    from colabhive.gateway.trained import EVAL_WAIT_S

    h.start_node("node-c", "--functions", ref, wait_for=[ref])
    h.wait_for(lambda: ref in (h.get_json("/healthz") or {}).get("ready_versions", []), 300, f"{ref} served",
               watch=["gateway", "node-c"])
    if time.time() - landed_at < EVAL_WAIT_S:  # the gateway evaluates a landed version once a node serves it
        end = time.monotonic() + 120
        while time.monotonic() < end and not (h.get_json(f"/v1/fn/{ref}") or {}).get("evaluation"):
            time.sleep(1.0)

    def call(q: str) -> tuple[float, dict[str, Any]]:
        body = {"messages": [{"role": "user", "content": q}], "max_tokens": 16}
        t0 = time.perf_counter()
        r = h.http.post(f"/v1/fn/{ref}", json=body, timeout=120)
        dt = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"call {ref}: {r.status_code} {r.text}")
        return dt, r.json()

    call("Hello, how are you?")  # warm-up: the first pass after the load
    seen: list[dict[str, Any]] = []
    for i in range(calls):
        topic, q, want = questions[i % len(questions)]
        ms, out = call(q)
        used = out["experts"][0]
        warm = any(c["member"] == used["name"] for c in seen)
        seen.append({"topic": topic, "ms": ms, "member": used["name"], "taxon": used["taxon"], "warm": warm,
                     "weight": used["weight"], "agrees": used["name"] == want,
                     "tokens": out["usage"]["completion_tokens"], "text": out["text"]})

    def p50(xs: list[float]) -> float | None:
        return statistics.median(xs) if xs else None

    return {"calls": seen, "p50_ms": p50([c["ms"] for c in seen]),
            "p50_cold_ms": p50([c["ms"] for c in seen if not c["warm"]]),
            "p50_warm_ms": p50([c["ms"] for c in seen if c["warm"]]),
            "agree": sum(c["agrees"] for c in seen), "own_topic": sum(c["taxon"] == c["topic"] for c in seen)}


# ---- report -------------------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def fmt(nll: float) -> str:
    return f"{nll:.3f} ({math.exp(nll):.1f})"


def report(args: argparse.Namespace, ctx: dict[str, Any]) -> str:
    per, tot = ctx["per_topic"], ctx["overall"]
    names = ("base", "dense", "k1", "k2", "oracle")
    out = [
        (f"chatterbot-corpus, {len(per)} English topics: {ctx['n_train']} training rows (uploaded), "
        f"{ctx['n_dev']} dev, {ctx['n_test']} test (never uploaded; {ctx['n_scored']} scored, "
        f"{ctx['test_tokens']} reply tokens); {ctx['dropped']} duplicate pairs dropped"),
        (f"SmolLM2-135M-Instruct + LoRA r {args.r} alpha {args.alpha:g} (q/v), batch {args.batch} x {args.seq_len} "
        f"tokens, {ctx['steps']} steps on each side (group budget {args.steps}, "
        f"proportional; dense the group's real total), torch threads 1 per node"),
        ctx["lr_note"],
        (f"route: group's MiniLM centroids, temperature {ctx['temperature']:g}; k=2 mixes the top two "
        "members' token probabilities"),
        "",
        "Test NLL per reply token (perplexity), lower is better",
        "",
        ("| topic | train | test | (a) base | (b) dense | (c1) experts k=1 | (c2) experts k=2 | (d) oracle "
        "| route acc |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, r in per.items():
        cells = " | ".join(fmt(r[n]) for n in names)
        out.append(f"| {t} | {r['train']} | {r['test']} | {cells} | {r['route_acc']:.2f} |")
    cells = " | ".join(f"**{fmt(tot[n])}**" for n in names)
    out.append(f"| **mean (token-weighted)** | {ctx['n_train']} | {ctx['n_scored']} | {cells} | "
               f"**{tot['route_acc']:.3f}** |")
    out.append("")
    for key, label in (("k1", "experts k=1"), ("k2", "experts k=2"), ("oracle", "oracle")):
        d = tot["dense"] - tot[key]
        lo, hi = ctx["ci"][key]
        way = "experts better" if lo > 0 else "dense better" if hi < 0 else "no clear difference"
        wins = sum(r[key] < r["dense"] for r in per.values())
        out.append(f"- dense - {label}: {d:+.3f} nats/token [{lo:+.3f}, {hi:+.3f}] ({way}); lower than dense "
                   f"on {wins}/{len(per)} topics")
    out.append(f"- dense - base: {tot['base'] - tot['dense']:+.3f} nats/token (what dense training bought)")
    out.append(f"- scoring check: max |mean NLL - generation_score.score_rows| on {ctx['check_rows']} base rows "
               f"= {ctx['check_diff']:.1e}")
    if ctx["merged"]:
        out.append(f"- partition merges: {ctx['merged']}")
    out += ["", "Learning rate (dev NLL per token; dense | experts routed k=1)", "",
            "| lr | dense dev NLL | experts k=1 dev NLL |", "|---:|---:|---:|"]
    for lr, d in ctx["dev"].items():
        mark = {side: " ←" if float(lr) == ctx["chosen"][side] else "" for side in ("dense", "experts")}
        out.append(f"| {lr} | {d['dense']:.3f}{mark['dense']} | {d['k1']:.3f}{mark['experts']} |")
    t = ctx["timing"]
    out += ["", "Training wall (chosen lr on each side; s)", "", "| | s | |", "|---|---:|---|"]
    dn = t["dense"]
    out.append(f"| dense job, lease → landed | {dn['run_s']:.0f} | on {', '.join(dn['nodes'])}; {dn['steps']} "
               f"steps, {dn['step_s']:.0f} s in steps; another job beside it {100 * dn['beside']:.0f} % "
               "of the time |")
    g = t["group"]
    out.append(f"| experts group, submit → registered | {g['wall_s']:.0f} | submit call (embed + partition) "
               f"{g['submit_s']:.1f} s; {g['children']} children, {g['steps']} steps, {g['step_s']:.0f} s in steps |")
    out.append(f"| one child, lease → landed: mean / max | {g['child_mean_s']:.1f} / {g['child_max_s']:.1f} | "
               f"sum over children {g['child_sum_s']:.0f} s |")
    out.append(f"| group wall / one child's mean wall | {g['wall_s'] / g['child_mean_s']:.1f}x | "
               f"sum of children's walls / group wall {g['child_sum_s'] / g['wall_s']:.2f} (2 nodes) |")
    out.append(f"| group wall / dense wall | {g['wall_s'] / dn['run_s']:.2f}x | |")
    out.append(f"| children per node | {', '.join(f'{n}: {c}' for n, c in sorted(g['per_node'].items()))} | "
               f"{g['retried']} child(ren) ran on more than one node |")
    if len(t["all"]) > 1:
        out += ["", "| run | lr | s (dense: lease → landed; group: submit → registered) | beside another job |",
                "|---|---:|---:|---:|"]
        for r in t["all"]:
            out.append(f"| {r['kind']} | {r['lr']:g} | {r['s']:.0f} | {r['beside']} |")
    s = ctx.get("serve")
    if s:
        n = len(s["calls"])
        out += ["", (f"Serving check: {n} greedy calls (16 tokens) to {ctx['group_ref']} through the gateway, "
                     f"node-c serving it alone, after one warm-up call: p50 {_ms(s['p50_ms'])}; "
                     f"{_ms(s['p50_cold_ms'])} on a member's first use (its adapter loads), "
                     f"{_ms(s['p50_warm_ms'])} once held. The member that answered was this process's k=1 pick "
                     f"{s['agree']}/{n}, the question's own topic {s['own_topic']}/{n}"),
                "", "| topic | member answered (first round) | ms cold | ms warm |", "|---|---|---:|---:|"]
        firsts = {}
        for c in s["calls"]:
            firsts.setdefault(c["topic"], []).append(c)
        for topic, cs in firsts.items():
            cold = next((c["ms"] for c in cs if not c["warm"]), None)
            warm = next((c["ms"] for c in cs if c["warm"]), None)
            out.append(f"| {topic} | {cs[0]['member']} | {_ms(cold)} | {_ms(warm)} |")
    if ctx.get("serve_error"):
        out += ["", f"Serving check failed: {ctx['serve_error'].splitlines()[0]}"]
    out.append(f"\nload average (1 min) {ctx['load'][0]:.2f} at the start, {ctx['load'][1]:.2f} at the end, "
               f"on {os.cpu_count()} CPUs; whole bench {ctx['wall_s'] / 60:.1f} min")
    return "\n".join(out)


# ---- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start, load0 = time.time(), os.getloadavg()[0]
    from hivectl import HiveProcess

    out = args.out or REPO / "bench" / "out" / time.strftime("experts-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    topics = english_topics()
    sp = make_splits(topics, args.test_frac, args.dev_frac, args.seed)
    train, dev = flat(sp.train), flat(sp.dev)
    print(f"{len(topics)} topics: {len(train)} train, {len(dev)} dev, {len(flat(sp.test))} test rows", flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-experts-")
    h = HiveProcess(Path(tmp.name), limits={"node_timeout_s": 6.0}, node={"torch_threads": 1},
                    telemetry={"exporter": "none"})
    state = Path(tmp.name) / "var"
    runs: dict[float, dict[str, Any]] = {}
    ctx: dict[str, Any] = {}
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo,minilm-embed", wait_for=["echo", "minilm-embed"])
        h.start_node("node-b", "--functions", "echo", wait_for=["echo"])
        train_id = upload(h, train, Path(tmp.name), "train.jsonl")
        dev_id = upload(h, dev, Path(tmp.name), "dev.jsonl")
        common = common_spec(args, train_id, dev_id)
        plan = submit(h, experts_spec(args, common, args.lr_grid[0], "0.0.1"), dry=True)
        steps = sum(p["steps"] for p in plan["partitions"])
        ctx["merged"] = plan["merged"]
        print(f"hive at {h.url}; dry run: {len(plan['partitions'])} partitions, {steps} steps in all "
              f"(budget {args.steps}); merged: {plan['merged'] or 'none'}", flush=True)
        # dense: every lr submitted at once (two train side by side, one per node)
        dense_ids = {}
        for i, lr in enumerate(args.lr_grid):
            dense_ids[lr] = submit(h, dense_spec(args, common, lr, f"1.0.{i}", steps))["id"]
        for i, lr in enumerate(args.lr_grid):
            wait_done(h, dense_ids[lr])
            runs[lr] = {"dense": job_record(h, dense_ids[lr]), "dense_ref": f"{DENSE}@1.0.{i}"}
            d = runs[lr]["dense"]
            print(f"dense lr {lr:g}: {d['run_s']:.0f} s, last step's loss {d['final_loss']:.3f}", flush=True)
        for i, lr in enumerate(args.lr_grid):
            t0 = time.time()
            parent = submit(h, experts_spec(args, common, lr, f"1.0.{i}"))
            submit_s = time.time() - t0
            view = wait_done(h, parent["id"])
            children = [job_record(h, c["job"]) for c in view["children"]]
            for c, v in zip(children, view["children"], strict=True):
                c["taxon"] = v["taxon"]
            runs[lr] |= {"group_ref": view["result"]["version"], "group_wall_s": view["finished_at"] - t0,
                         "landed_at": view["finished_at"],
                         "submit_s": submit_s, "children": children}
            print(f"experts lr {lr:g}: {runs[lr]['group_wall_s']:.0f} s for {len(children)} children", flush=True)
        ctx |= evaluate(args, sp, state, runs)
        if args.serve_calls:
            ref = ctx["group_ref"]
            qs = [(t, rows[0]["question"], ctx["route_of"][t]) for t, rows in sp.test.items()]
            print(f"serving check on {ref} …", flush=True)
            landed = runs[ctx["chosen"]["experts"]]["landed_at"]
            import httpx

            try:
                ctx["serve"] = serve_check(h, ref, landed, qs, args.serve_calls)
            except (RuntimeError, TimeoutError, KeyError, httpx.HTTPError) as exc:  # the table stands without it
                ctx["serve_error"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
                print(f"serving check failed: {ctx['serve_error']}", flush=True)
    finally:
        h.stop()
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        for f in h.logs.glob("*.log"):
            (logs / f.name).write_bytes(f.read_bytes())
        tmp.cleanup()
    ctx |= {"steps": steps, "load": (load0, os.getloadavg()[0]), "wall_s": time.time() - t_start,
            "dropped": sum(sp.dropped.values()), "n_train": len(train), "n_dev": len(dev),
            "n_test": len(flat(sp.test))}
    ctx["timing"] = timing(runs, ctx["chosen"])
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": {str(k): v for k, v in runs.items()},
               **{k: v for k, v in ctx.items() if k not in ("route_of",)}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    text = report(args, ctx)
    print("\n" + text)
    (out / "table.md").write_text(text + "\n")
    print(f"\nwritten to {out}")
    return 0


def timing(runs: dict[float, dict[str, Any]], chosen: dict[str, float]) -> dict[str, Any]:
    dense_all = [r["dense"] for r in runs.values()]
    dn = runs[chosen["dense"]]["dense"] | {}
    dn["beside"] = beside(dn, dense_all)
    ex = runs[chosen["experts"]]
    kids = ex["children"]
    walls = [c["run_s"] for c in kids]
    group = {"wall_s": ex["group_wall_s"], "submit_s": ex["submit_s"], "children": len(kids),
             "steps": sum(c["steps"] for c in kids), "step_s": sum(c["step_s"] for c in kids),
             "child_mean_s": statistics.mean(walls), "child_max_s": max(walls), "child_sum_s": sum(walls),
             "per_node": dict(Counter(c["nodes"][-1] for c in kids)),
             "retried": sum(len(set(c["nodes"])) > 1 for c in kids),
             "child_nodes": {c["taxon"]: c["nodes"] for c in kids}}
    rows = []
    for lr, r in runs.items():
        share = beside(r["dense"], dense_all)
        rows.append({"kind": "dense", "lr": lr, "s": r["dense"]["run_s"], "beside": f"{100 * share:.0f} %"})
        rows.append({"kind": "experts", "lr": lr, "s": r["group_wall_s"], "beside": "alone on the hive"})
    return {"dense": dn, "group": group, "all": rows}


def evaluate(args: argparse.Namespace, sp: Splits, state: Path, runs: dict[float, dict[str, Any]]) -> dict[str, Any]:
    """Dev NLL per lr (the choice), then the test table for the chosen pair."""
    import torch

    torch.set_num_threads(args.threads)
    groups = {lr: group_files(state, r["group_ref"]) for lr, r in runs.items()}
    tags = {lr: f"g{i}" for i, lr in enumerate(runs)}  # adapter names: peft refuses a "." in one
    adapters: dict[str, Path] = {}
    for lr, r in runs.items():
        name, version = r["dense_ref"].split("@")
        adapters[f"dense-{tags[lr]}"] = state / "trained" / f"{name}-{version}"
        for member, folder in groups[lr][1].items():
            adapters[f"{member}-{tags[lr]}"] = folder
    t0 = time.time()
    scorer = Scorer(adapters)
    router = Router(groups[args.lr_grid[0]][0])  # every group routes with the same encoder
    print(f"scoring: {len(adapters)} adapters loaded in {time.time() - t0:.0f} s", flush=True)

    def routes(manifest: Any, rows: Rows, k: int) -> list[list[tuple[str, float]]]:
        return router.routes(manifest, [row["question"] for row in rows], k)

    def encode(rows: Rows) -> list[tuple[list[int], list[int]]]:
        return [(scorer.prompt_ids(r["question"]), scorer.reply_ids(r["answer"])) for r in rows]

    # dev: dense and routed k=1 for every lr
    dev_rows = flat(sp.dev)
    dev_enc = encode(dev_rows)
    dev: dict[str, dict[str, float]] = {}
    for lr in runs:
        picks = routes(groups[lr][0], dev_rows, 1)
        items = [Item(p, a, f"dense-{tags[lr]}") for p, a in dev_enc]
        items += [Item(p, a, f"{pk[0][0]}-{tags[lr]}") for (p, a), pk in zip(dev_enc, picks, strict=True)]
        lps = scorer.logprobs(items)
        n = len(dev_enc)
        tok = sum(len(lp) for lp in lps[:n])
        got = {"dense": -sum(lp.sum() for lp in lps[:n]) / tok, "k1": -sum(lp.sum() for lp in lps[n:]) / tok}
        dev[f"{lr:g}"] = got
        print(f"dev lr {lr:g}: dense {got['dense']:.3f}, experts k=1 {got['k1']:.3f}", flush=True)
    chosen = {"dense": min(runs, key=lambda lr: dev[f"{lr:g}"]["dense"]),
              "experts": min(runs, key=lambda lr: dev[f"{lr:g}"]["k1"])}
    if len(runs) == 1:
        lr_note = (f"lr {args.lr_grid[0]:g} on both sides: one value, not tuned (pass --lrs a,b,c to choose each "
                   "side's by dev NLL from the same grid)")
    else:
        lr_note = (f"lr chosen per side from the same grid {args.lrs} by dev NLL: dense {chosen['dense']:g}, "
                   f"experts {chosen['experts']:g}")
    dense_ad = f"dense-{tags[chosen['dense']]}"
    manifest = groups[chosen["experts"]][0]
    lr_e = tags[chosen["experts"]]
    member_of = {m.taxon: m.name for m in manifest.experts.members}

    # test
    test = {t: rows[: args.max_test_rows] if args.max_test_rows else rows for t, rows in sp.test.items()}
    rows = [(t, r) for t, rs in test.items() for r in rs]
    enc = encode([r for _, r in rows])
    top2 = routes(manifest, [r for _, r in rows], 2)
    items: list[Item] = []
    index: dict[tuple[int, str], int] = {}

    def need(i: int, adapter: str) -> None:
        if (i, adapter) not in index:
            index[(i, adapter)] = len(items)
            items.append(Item(enc[i][0], enc[i][1], adapter))

    for i, (t, _) in enumerate(rows):
        need(i, "__base__")
        need(i, dense_ad)
        for name, _w in top2[i]:
            need(i, f"{name}-{lr_e}")
        need(i, f"{member_of[t]}-{lr_e}")
    t0 = time.time()
    lps = scorer.logprobs(items)
    print(f"test: {len(items)} scored sequences for {len(rows)} rows in {time.time() - t0:.0f} s", flush=True)
    check = [Item(enc[i][0], enc[i][1], "__base__") for i in range(min(16, len(rows)))]
    check_diff = scorer.check_against_repo(check)

    def lp(i: int, adapter: str) -> np.ndarray:
        return lps[index[(i, adapter)]]

    kinds: dict[str, list[np.ndarray]] = {k: [] for k in ("base", "dense", "k1", "k2", "oracle")}
    hit = []
    for i, (t, _) in enumerate(rows):
        kinds["base"].append(lp(i, "__base__"))
        kinds["dense"].append(lp(i, dense_ad))
        (m1, _w1), (m2, _w2) = top2[i][0], top2[i][1]
        kinds["k1"].append(lp(i, f"{m1}-{lr_e}"))
        kinds["k2"].append(mixture([lp(i, f"{m1}-{lr_e}"), lp(i, f"{m2}-{lr_e}")], [top2[i][0][1], top2[i][1][1]]))
        kinds["oracle"].append(lp(i, f"{member_of[t]}-{lr_e}"))
        hit.append(m1 == member_of[t])
    totals = {k: nll_rows(v) for k, v in kinds.items()}
    tokens = totals["base"][1]
    topic_of = np.array([t for t, _ in rows])
    hits = np.array(hit)
    per_topic = {}
    for t in test:
        sel = topic_of == t
        per_topic[t] = {"train": len(sp.train[t]), "test": int(sel.sum()), "route_acc": float(hits[sel].mean()),
                        "tokens": int(tokens[sel].sum()),
                        **{k: float(v[0][sel].sum() / tokens[sel].sum()) for k, v in totals.items()}}
    overall = {k: float(v[0].sum() / tokens.sum()) for k, v in totals.items()} | {"route_acc": float(hits.mean())}
    ci = {k: bootstrap(totals["dense"][0], totals[k][0], tokens, args.seed) for k in ("k1", "k2", "oracle")}
    # what this process routes each topic's first test question to (the serving check compares)
    route_of = {t: top2[next(i for i, (tt, _) in enumerate(rows) if tt == t)][0][0] for t in test}
    return {"per_topic": per_topic, "overall": overall, "ci": ci, "dev": dev, "chosen": chosen, "lr_note": lr_note,
            "group_ref": runs[chosen["experts"]]["group_ref"], "dense_ref": runs[chosen["dense"]]["dense_ref"],
            "temperature": manifest.experts.temperature, "n_scored": len(rows), "test_tokens": int(tokens.sum()),
            "check_diff": check_diff, "check_rows": len(check), "route_of": route_of}


if __name__ == "__main__":
    raise SystemExit(main())
