"""``colabhive models export`` against a real hive: LoRA versions trained by a node process out as a
PEFT adapter, as a merged model, and as weighted mixes; any other version out as its files.

One gateway and one node train five tiny jobs (a step or a few each): two rank-4 adapters on
smollm2-chat (qa-a, qa-b), a rank-2 one (qa-r2), one on a second, tiny base built here
(tiny-qa), and a LightGBM table (bc-x). The CLI fetches everything over HTTP; what it writes
is loaded back with peft and transformers here and compared with what the hive serves and
with peft's own arithmetic. It runs as a subprocess, as a builder runs it, except where it
merges: there it runs in this process, which has torch imported already (an import costs
seconds of CPU on a small machine, and the code path is the same).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hivectl import MANIFESTS, ROOT, HiveProcess, free_port
from test_jobs import LIMITS, spec_of, upload, wait_job

from colabhive.cli import main
from colabhive.manifests import read_manifest
from colabhive.training import example_data

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # peft asks transformers a deprecated question

BASE_DIR = ROOT / "models" / "smollm2-135m-instruct"
PROMPT = "What is physics?"
TOKENS = 8
MODULE = "base_model.model.model.layers.0.self_attn.q_proj"
"""The LoRA module whose matrices the mix tests check."""
ALPHA, RANK = 12.0, 4  # scaling alpha / r = 3: a mix whose sqrt(weight * scaling) is not 1 shows its formula


def tiny_base(into: Path) -> None:
    """A second generation base: SmolLM2's tokenizer on a one-layer random Llama, so a job on it is instant."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(BASE_DIR)
    cfg.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                "num_key_value_heads": 1, "head_dim": 16})
    AutoModelForCausalLM.from_config(cfg).save_pretrained(into / "tiny-llama")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(BASE_DIR / name, into / "tiny-llama" / name)
    (into / "tiny-llama.toml").write_text('name = "tiny-llama"\nversion = "1.0.0"\ntask = "generation"\n'
                                          '[source]\npath = "tiny-llama"\n')


def lora(ds: str, output: str, *, base: str = "smollm2-chat", r: int = RANK, seed: int = 0, lr: float = 2e-4,
         steps: int = 4) -> dict[str, Any]:
    return spec_of("lora-smollm2-qa.toml", output=output, base=base, dataset__id=ds, checkpoint_every=steps,
                   seed=seed, budget={"max_steps": steps},
                   eval={"split": 0.1, "metric": "chrf", "threshold": 0.0, "max_rows": 1},
                   hparams={"lr": lr, "batch_size": 2, "seq_len": 64, "r": r, "alpha": ALPHA, "eval_max_tokens": 4,
                            "target_modules": ["q_proj", "v_proj"]})


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    tmp = tmp_path_factory.mktemp("export")
    extra = tmp / "manifests"
    extra.mkdir()
    tiny_base(extra)
    h = HiveProcess(tmp, [MANIFESTS, extra], limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo,qa-a", wait_for=["echo"])
        qa = upload(h, example_data.chatterbot_qa(("science",))[:32], tmp, "qa.jsonl")
        bc = upload(h, example_data.sklearn_table("load_breast_cancer"), tmp, "bc.csv")
        specs = [lora(qa, "qa-a@1.0.0"), lora(qa, "qa-b@1.0.0", seed=1, lr=1e-3, steps=2),
                 lora(qa, "qa-r2@1.0.0", r=2, steps=1), lora(qa, "tiny-qa@1.0.0", base="tiny-llama", steps=1),
                 spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-x@1.0.0", dataset__id=bc,
                         budget__max_steps=10, checkpoint_every=10)]
        jobs = []
        for spec in specs:
            r = h.http.post("/v1/jobs", json=spec)
            assert r.status_code == 202, r.text
            jobs.append(r.json()["id"])
        for job in jobs:
            view = wait_job(h, job, timeout=300)
            assert view["status"] == "succeeded", view
        h.wait_for(lambda: "qa-a@1.0.0" in (h.get_json("/healthz") or {}).get("ready_versions", []), 120,
                   "qa-a served")
        yield h
    finally:
        h.stop()


def cli(h: HiveProcess, *args: str, gateway: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "colabhive", "models", "export", *args,
                           "--gateway", gateway or h.url], cwd=h.tmp, capture_output=True, text=True, timeout=300,
                          check=False)


def in_process(h: HiveProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The same command through ``colabhive.cli.main`` here, its output captured the same way."""
    argv = ["models", "export", *args, "--gateway", h.url]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


def exported(h: HiveProcess, out: Path, *args: str, here: bool = False) -> dict[str, Any]:
    """Run the export (``here``: in this process); its export.json."""
    p = (in_process if here else cli)(h, *args, "--out", str(out))
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert str(out) in p.stdout, p.stdout
    return json.loads((out / "export.json").read_text())


def landed(h: HiveProcess, ref: str) -> Path:
    """The version's directory on the gateway (only to compare bytes with; the CLI never reads it)."""
    return h.tmp / "var" / "trained" / ref.replace("@", "-")


# ---- loading what was written ---------------------------------------------------------------
def load_base() -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(BASE_DIR, dtype=torch.float32).eval()


def greedy(model: Any, tokenizer: Any, prompt: str = PROMPT, n: int = TOKENS) -> tuple[str, Any]:
    """The greedy answer as the generation runner renders and ends one, and the prompt's last logits."""
    import torch

    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    end = {model.generation_config.eos_token_id, tokenizer.eos_token_id}
    new: list[int] = []
    first = None
    with torch.inference_mode():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids + new])).logits[0, -1]
            first = logits if first is None else first
            token = int(logits.argmax())
            if token in end:
                break
            new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False), first


@pytest.fixture(scope="module")
def served(hive: HiveProcess) -> str:
    r = hive.http.post("/v1/fn/qa-a@1.0.0", json={"messages": [{"role": "user", "content": PROMPT}],
                                                  "max_tokens": TOKENS, "temperature": 0}, timeout=120)
    assert r.status_code == 200 and r.json()["text"], r.text
    return r.json()["text"]


@pytest.fixture(scope="module")
def adapter_dir(hive: HiveProcess) -> Path:
    out = hive.tmp / "out-adapter"
    record = exported(hive, out, "qa-a@1.0.0")
    assert record["kind"] == "adapter" and record["versions"] == ["qa-a@1.0.0"], record
    assert record["base"] == "smollm2-chat@1.0.0" and record["base_sha256"], record
    return out


@pytest.fixture(scope="module")
def adapted(adapter_dir: Path) -> tuple[str, Any]:
    """Base + the exported adapter, unmerged, through peft: its greedy answer and logits."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    model = PeftModel.from_pretrained(load_base(), str(adapter_dir)).eval()
    return greedy(model, AutoTokenizer.from_pretrained(BASE_DIR))


def test_adapter_export_is_the_served_adapter_and_answers_as_the_hive_does(
        hive: HiveProcess, adapter_dir: Path, adapted: tuple[str, Any], served: str) -> None:
    files = sorted(p.name for p in adapter_dir.iterdir())
    assert {"adapter_config.json", "adapter_model.safetensors", "provenance.json", "export.json"} <= set(files)
    for name in ("adapter_config.json", "adapter_model.safetensors"):  # byte for byte what the hive serves
        assert (adapter_dir / name).read_bytes() == (landed(hive, "qa-a@1.0.0") / name).read_bytes(), name
    prov = json.loads((adapter_dir / "provenance.json").read_text())
    assert prov["output"] == "qa-a@1.0.0" and prov["method"] == "lora" and prov["spec"]["hparams"]["r"] == RANK
    text, _ = adapted
    assert text == served, (text, served)


def test_merged_export_is_a_plain_model_that_answers_as_the_adapter(
        hive: HiveProcess, adapted: tuple[str, Any], served: str) -> None:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = hive.tmp / "out-merged"
    record = exported(hive, out, "qa-a@1.0.0", "--merged", here=True)  # the base fetched from the gateway
    assert record["kind"] == "merged" and record["base"] == "smollm2-chat@1.0.0", record
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        q = f.get_tensor("model.layers.0.self_attn.q_proj.weight")
    assert keys and not any("lora" in k for k in keys), keys[:5]
    with safe_open(str(BASE_DIR / "model.safetensors"), "pt") as f:
        assert not torch.equal(q, f.get_tensor("model.layers.0.self_attn.q_proj.weight"))  # the adapter is in it
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    text, logits = greedy(model, AutoTokenizer.from_pretrained(out))  # its own tokenizer and chat template
    want_text, want_logits = adapted
    assert text == want_text == served, (text, want_text, served)
    assert torch.allclose(logits, want_logits, atol=1e-4), (logits - want_logits).abs().max()


def lora_tensors(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    return load_file(str(folder / "adapter_model.safetensors")), config


def delta_of(folder: Path) -> Any:
    """The update the adapter in ``folder`` makes to MODULE, as peft computes it after loading it."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(), str(folder))
    layer = model.get_submodule(MODULE)
    return layer.get_delta_weight("default")


def test_linear_mix_is_peft_weighted_sum_of_a_and_b(hive: HiveProcess) -> None:
    import torch

    out = hive.tmp / "out-linear"
    record = exported(hive, out, "qa-a@1.0.0", "qa-b@1.0.0", "--combination", "linear", "--weights", "0.5,0.5",
                      "--base", str(BASE_DIR), here=True)
    assert record["kind"] == "adapter" and record["combination"] == "linear" and record["weights"] == [0.5, 0.5]
    assert set(record["provenance"]) == {"qa-a@1.0.0", "qa-b@1.0.0"}
    mixed, config = lora_tensors(out)
    assert config["r"] == RANK and config["lora_alpha"] == RANK  # scaling 1: the weights carry it
    a, b = (lora_tensors(landed(hive, ref))[0] for ref in ("qa-a@1.0.0", "qa-b@1.0.0"))
    c = math.sqrt(0.5 * ALPHA / RANK)  # peft: sqrt(weight * scaling) on each side
    for part in ("lora_A", "lora_B"):
        key = f"{MODULE}.{part}.weight"
        assert torch.allclose(mixed[key], c * a[key] + c * b[key], rtol=1e-5, atol=1e-9), part
    want = (c * a[f"{MODULE}.lora_B.weight"] + c * b[f"{MODULE}.lora_B.weight"]) @ \
        (c * a[f"{MODULE}.lora_A.weight"] + c * b[f"{MODULE}.lora_A.weight"])
    assert want.abs().max() > 1e-5  # the adapters trained: their B matrices are no longer zero
    assert torch.allclose(delta_of(out), want, rtol=1e-5, atol=1e-9)


def test_cat_mix_stacks_ranks_and_its_update_is_the_weighted_sum(hive: HiveProcess) -> None:
    import torch

    out = hive.tmp / "out-cat"
    record = exported(hive, out, "qa-a@1.0.0", "qa-b@1.0.0", "--weights", "0.7,0.3", "--base", str(BASE_DIR),
                      here=True)
    assert record["combination"] == "cat" and record["weights"] == [0.7, 0.3], record  # cat is the default
    _, config = lora_tensors(out)
    assert config["r"] == 2 * RANK, config["r"]  # the ranks add up
    s = ALPHA / RANK
    want = 0
    for w, ref in ((0.7, "qa-a@1.0.0"), (0.3, "qa-b@1.0.0")):
        t = lora_tensors(landed(hive, ref))[0]
        want = want + w * s * t[f"{MODULE}.lora_B.weight"] @ t[f"{MODULE}.lora_A.weight"]
    assert want.abs().max() > 1e-5
    assert torch.allclose(delta_of(out), want, rtol=1e-5, atol=1e-9)  # exactly the weighted sum of the two updates


def test_a_non_lora_version_exports_its_files_with_provenance(hive: HiveProcess) -> None:
    out = hive.tmp / "out-bc"
    record = exported(hive, out, "bc-x@1.0.0")
    assert record["kind"] == "files" and record["provenance"]["bc-x@1.0.0"]["method"] == "tabular"
    stored = landed(hive, "bc-x@1.0.0")
    names = {p.name for p in stored.iterdir()}
    assert names | {"export.json"} == {p.name for p in out.iterdir()}
    for name in names - {"manifest.toml"}:
        assert (out / name).read_bytes() == (stored / name).read_bytes(), name
    m, problems = read_manifest(out / "manifest.toml")  # a manifest directory a hive can load as it is
    assert m is not None and not problems, problems
    assert m.ref == "bc-x@1.0.0" and m.source.path == "." and not m.source.artifact
    p = cli(hive, "bc-x@1.0.0", "--merged", "--out", str(hive.tmp / "out-bc-merged"))
    assert p.returncode == 1 and "bc-x@1.0.0 is not a LoRA adapter" in p.stderr, p.stderr


def refused(h: HiveProcess, *args: str, gateway: str | None = None, here: bool = False) -> str:
    """Run an export that must be refused: exit 1, the reason on stderr, nothing written."""
    out = h.tmp / "out-refused"
    p = in_process(h, *args, "--out", str(out)) if here else cli(h, *args, "--out", str(out), gateway=gateway)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    assert not out.exists() and not list(h.tmp.glob(".out-refused*")), "a refused export left files behind"
    return p.stderr.strip().splitlines()[-1]


def test_refusals_say_why_and_write_nothing(hive: HiveProcess) -> None:
    msg = refused(hive, "qa-a@1.0.0", "tiny-qa@1.0.0")
    assert "qa-a@1.0.0 was trained on smollm2-chat@1.0.0" in msg, msg
    assert "tiny-qa@1.0.0 was trained on tiny-llama@1.0.0" in msg and "one base" in msg, msg
    msg = refused(hive, "qa-a@1.0.0", "qa-r2@1.0.0", "--combination", "linear")
    assert "qa-a@1.0.0 r=4" in msg and "qa-r2@1.0.0 r=2" in msg and "ranks must be equal" in msg, msg
    msg = refused(hive, "qa-a@1.0.0", "smollm2-chat@1.0.0")  # refused from the headers, not after 500 MB
    assert "smollm2-chat@1.0.0 is not a LoRA adapter (a whole model, by path)" in msg, msg
    assert "no version 'nope@1.0.0'" in refused(hive, "nope@1.0.0")
    assert "echo@1.0.0 has no files" in refused(hive, "echo@1.0.0")
    tiny = hive.tmp / "manifests" / "tiny-llama"
    msg = refused(hive, "qa-a@1.0.0", "--merged", "--base", str(tiny), here=True)  # no digest: the shapes tell
    assert f"does not fit the base in --base {tiny}" in msg, msg

    # argument errors are refused before any request: the gateway here is a port nobody listens on
    nowhere = f"http://127.0.0.1:{free_port()}"
    msg = refused(hive, "qa-a@1.0.0", "qa-b@1.0.0", "--weights", "0.7,0.2,0.1", gateway=nowhere)
    assert "--weights has 3 values for 2 versions" in msg, msg
    assert "numbers separated by commas" in refused(hive, "qa-a@1.0.0", "qa-b@1.0.0", "--weights", "a,b",
                                                    gateway=nowhere)
    assert "--weights mixes several versions" in refused(hive, "qa-a@1.0.0", "--weights", "1", gateway=nowhere)
    assert "name@version" in refused(hive, "qa-a", gateway=nowhere)
    busy = hive.tmp / "busy"
    busy.mkdir(exist_ok=True)
    (busy / "keep.txt").write_text("mine")
    p = cli(hive, "qa-a@1.0.0", "--out", str(busy), gateway=nowhere)
    assert p.returncode == 1 and f"{busy} is not an empty directory" in p.stderr, p.stderr
    assert [f.name for f in busy.iterdir()] == ["keep.txt"]
    unreachable = cli(hive, "qa-a@1.0.0", "--out", str(hive.tmp / "out-nowhere"), gateway=nowhere)
    assert unreachable.returncode == 2 and "cannot reach the gateway" in unreachable.stderr, unreachable.stderr


def test_artifact_route_answers_errors_as_machine_readable_bodies(hive: HiveProcess) -> None:
    r = hive.http.get("/v1/registry/nope@1.0.0/artifact")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_function", r.text
    r = hive.http.get("/v1/registry/echo@1.0.0/artifact")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_artifact", r.text
    r = hive.http.get("/v1/registry/qa-a/artifact")
    assert r.status_code == 422 and r.json()["error"]["field"] == "ref", r.text
    r = hive.http.get("/v1/registry/qa-a@1.0.0/artifact")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
    assert r.headers["x-hive-source"] == "trained" and int(r.headers["content-length"]) == len(r.content)
