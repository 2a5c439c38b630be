"""The placement planner on described nodes (no processes): what goes where, and the reason
given for what fits nowhere. The end-to-end tests check nodes really load what it says."""

from __future__ import annotations

import msgspec

from colabhive.dispatch.node_registry import NodeRecord
from colabhive.gateway.planner import plan_hive
from colabhive.manifests import Hardware, Manifest
from colabhive.wire import Device

GIB = 1024


def _m(name: str, mb: int, kinds: list[str], dtypes: list[str] | None = None, devices: int = 1) -> Manifest:
    hw = Hardware(device_kinds=kinds, min_memory_mb=mb, dtypes=dtypes or ["fp32"], devices=devices)
    return Manifest(name=name, task="echo", hardware=hw)


def _node(nid: str, *devices: Device) -> NodeRecord:
    return NodeRecord(id=nid, name=nid, site="local", host="h", devices=list(devices))


A40 = Device(kind="cuda", index=0, name="A40", memory_mb=48 * GIB, dtypes=["fp32", "fp16", "bf16"])
RTX3060 = Device(kind="cuda", index=0, name="RTX 3060", memory_mb=12 * GIB, dtypes=["fp32", "fp16"])
CPU = Device(kind="cpu", index=0, name="EPYC", memory_mb=24 * GIB, dtypes=["fp32"])


def test_each_node_gets_what_fits_and_no_device_is_overcommitted() -> None:
    big, mid, small = _m("big", 30 * GIB, ["cuda"]), _m("mid", 10 * GIB, ["cuda"]), _m("small", 300, ["cuda", "cpu"])
    versions = [(big, "preferred"), (mid, "preferred"), (small, "ready")]
    plan = plan_hive([_node("a40", A40), _node("lima", RTX3060), _node("cpu", CPU)], versions, {})
    held = {nid: {p.ref for p in ps} for nid, ps in plan.hosting.items()}
    assert held == {"a40": {"big@1.0.0", "mid@1.0.0", "small@1.0.0"}, "lima": {"mid@1.0.0", "small@1.0.0"},
                    "cpu": {"small@1.0.0"}}
    assert plan.used[("a40", "cuda:0")] == 30 * GIB + 10 * GIB + 300 <= A40.memory_mb
    assert plan.used[("lima", "cuda:0")] == 10 * GIB + 300 <= RTX3060.memory_mb
    assert plan.reasons == {}


def test_memory_runs_out_for_candidates_before_preferred_versions() -> None:
    pref, cand = _m("llm", 8 * GIB, ["cuda"]), msgspec.structs.replace(_m("llm", 8 * GIB, ["cuda"]), version="2.0.0")
    plan = plan_hive([_node("lima", RTX3060)], [(cand, "candidate"), (pref, "preferred")], {})
    assert [p.ref for p in plan.hosting["lima"]] == ["llm@1.0.0"]
    assert "llm@2.0.0" in plan.reasons and "largest free such device has 4 GiB" in plan.reasons["llm@2.0.0"]


def test_reasons_name_the_missing_resource() -> None:
    huge = _m("huge", 24 * GIB, ["cuda", "xpu"])
    bf16 = _m("bf16-only", 100, ["cuda"], ["bf16"])
    pair = _m("pair", 2 * GIB, ["cuda"], devices=2)
    gpu_only = _m("gpu-only", 100, ["cuda"])
    versions = [(huge, "ready"), (bf16, "ready"), (pair, "ready"), (gpu_only, "ready")]
    plan = plan_hive([_node("lima", RTX3060)], versions, {})
    assert plan.reasons["huge@1.0.0"] == (
        "it needs 24 GiB on cuda or xpu; the largest free such device has 11.9 GiB (lima cuda:0)"  # gpu-only took 100 MB
    )
    assert "needs bf16 on cuda; those devices offer fp16, fp32" in plan.reasons["bf16-only@1.0.0"]
    assert "needs 2 cuda devices on one node" in plan.reasons["pair@1.0.0"]
    cpu_only = plan_hive([_node("cpu", CPU)], versions, {})
    assert cpu_only.reasons["gpu-only@1.0.0"] == "it needs a cuda device; the connected nodes have cpu"
    assert plan_hive([], versions, {}).reasons["huge@1.0.0"] == "no node is connected to the hive"


def test_a_node_limited_by_node_functions_gets_only_those_and_retired_versions_go_nowhere() -> None:
    a, b = _m("a", 100, ["cpu"]), _m("b", 100, ["cpu"])
    plan = plan_hive([_node("n", CPU)], [(a, "preferred"), (b, "ready")], {"n": frozenset({"b"})})
    assert [p.ref for p in plan.hosting["n"]] == ["b@1.0.0"]
    assert "configured to host it" in plan.reasons["a@1.0.0"]
    retired = plan_hive([_node("n", CPU)], [(a, "retired")], {})
    assert retired.hosting["n"] == [] and retired.reasons == {}


def test_two_device_model_gets_both_devices() -> None:
    gpus = [Device(kind="cuda", index=i, memory_mb=16 * GIB, dtypes=["fp32", "fp16"]) for i in range(2)]
    pair = _m("pair", 20 * GIB, ["cuda"], ["fp16"], devices=2)
    plan = plan_hive([_node("n", *gpus)], [(pair, "preferred")], {})
    (p,) = plan.hosting["n"]
    assert p.device == "cuda:0,cuda:1" and p.dtype == "fp16"
    assert plan.used[("n", "cuda:0")] == plan.used[("n", "cuda:1")] == 10 * GIB
