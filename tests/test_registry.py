"""Versions and their lifecycle on a real hive: pinning, evaluation gates, promotion, rollback, retirement.

Three versions of a language identifier (the same real py3langid model) with their own
evaluation sets: 1.0.0 starts preferred, 1.1.0 is a candidate that passes its gate, and
0.9.0 is a candidate whose gate asks more than the model achieves on very short texts,
so its promotion must be refused with the scores. Every check goes over HTTP (or the
CLI) to real gateway and node processes, and the states must survive a gateway restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_LIMITS, _running
from hivectl import MANIFESTS, HiveProcess
from test_bad_input import assert_error

CLEAR = [
    ("en", "The committee will publish its final report on the new railway line next spring."),
    ("pt", "A comissão vai publicar o relatório final sobre a nova linha ferroviária na próxima primavera."),
    ("es", "El comité publicará su informe final sobre la nueva línea de ferrocarril la próxima primavera."),
    ("fr", "Le comité publiera son rapport final sur la nouvelle ligne de chemin de fer au printemps prochain."),
    ("de", "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnstrecke im nächsten Frühjahr vorlegen."),
    ("it", "Il comitato pubblicherà la relazione finale sulla nuova linea ferroviaria la prossima primavera."),
    ("nl", "De commissie publiceert het eindrapport over de nieuwe spoorlijn in het komende voorjaar."),
    ("en", "Please remember to water the tomato plants twice a day while we are away on holiday."),
    ("pt", "Por favor, lembra-te de regar os tomateiros duas vezes por dia enquanto estivermos de férias."),
    ("de", "Bitte denk daran, die Tomatenpflanzen zweimal am Tag zu gießen, während wir im Urlaub sind."),
]
# one- and two-word texts: hard for any character-n-gram identifier
SHORT = [("en", "ok"), ("pt", "sim"), ("es", "vale"), ("it", "ciao"), ("de", "ja"), ("fr", "oui merci"), ("nl", "dank")]


def _dataset(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("".join(json.dumps({"input": {"text": t}, "expected": lang}) + "\n" for lang, t in rows))
    return path.name


def _manifest(d: Path, version: str, lifecycle: str, dataset: str, threshold: float) -> None:
    (d / f"langid-{version}.toml").write_text(
        f'name = "langid"\nversion = "{version}"\ntask = "language"\nlifecycle = "{lifecycle}"\n'
        f'[source]\npackage = "py3langid"\n[hardware]\ndevice_kinds = ["cpu"]\n'
        f'[batching]\nmax_batch = 16\n'
        f'[eval]\ndataset = "{dataset}"\nmetric = "accuracy"\nthreshold = {threshold}\nfield = "language"\n'
    )


@pytest.fixture(scope="module")
def reg_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    d = tmp_path_factory.mktemp("registry-manifests")
    clear, short = _dataset(d / "clear.jsonl", CLEAR), _dataset(d / "short.jsonl", SHORT)
    _manifest(d, "1.0.0", "preferred", clear, 0.8)
    _manifest(d, "1.1.0", "candidate", clear, 0.8)
    _manifest(d, "0.9.0", "candidate", short, 0.95)
    (d / "echo.toml").write_text((MANIFESTS / "echo.toml").read_text())
    with _running(HiveProcess(tmp_path_factory.mktemp("registry-hive"), [d], limits=dict(TEST_LIMITS))) as h:
        h.start_gateway()
        h.start_node("node-r", "--functions", "langid", wait_for=["langid@0.9.0", "langid@1.0.0", "langid@1.1.0"])
        yield h


def _fn(h: HiveProcess) -> dict[str, Any]:
    fns = {f["name"]: f for f in h.get_json("/v1/fn")["functions"]}
    return fns["langid"]


def _states(h: HiveProcess) -> dict[str, str]:
    return {v["version"]: v["lifecycle"] for v in _fn(h)["versions"]}


def _version_called(h: HiveProcess, fn: str) -> str:
    r = h.call(fn, text=CLEAR[0][1])
    assert r.status_code == 200, r.text
    assert r.json()["language"] == "en"
    return r.headers["x-hive-version"]


def _cli(h: HiveProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colabhive", *args, "--gateway", h.url],
        capture_output=True, text=True, timeout=120, cwd=h.tmp,
    )


def test_catalog_lists_every_version_with_state_artifact_and_nodes(reg_hive: HiveProcess) -> None:
    f = _fn(reg_hive)
    assert f["default"] == f["preferred"] == "langid@1.0.0"
    assert [v["version"] for v in f["versions"]] == ["0.9.0", "1.0.0", "1.1.0"]  # version order, not file order
    assert _states(reg_hive) == {"0.9.0": "candidate", "1.0.0": "preferred", "1.1.0": "candidate"}
    node_ids = {n["id"] for n in reg_hive.get_json("/v1/nodes")["nodes"]}
    for v in f["versions"]:
        assert set(v["nodes"]) == node_ids, v
        assert len(v["artifact"]["sha256"]) == 64 and v["artifact"]["source"].startswith("package:py3langid==")
        assert v["eval_spec"]["metric"] == "accuracy"
    # same model files in all three versions: one artifact
    assert len({v["artifact"]["sha256"] for v in f["versions"]}) == 1


def test_plain_name_runs_preferred_and_a_pin_runs_that_version(reg_hive: HiveProcess) -> None:
    assert _version_called(reg_hive, "langid") == "langid@1.0.0"
    assert _version_called(reg_hive, "langid@1.1.0") == "langid@1.1.0"  # a candidate can be tried when pinned
    err = assert_error(reg_hive.call("langid@7.0.0", text="hello there"), 404, "unknown_function")
    assert "1.0.0" in err["message"]  # says which versions exist
    desc = reg_hive.get_json("/v1/fn/langid@1.1.0")
    assert desc["ref"] == "langid@1.1.0" and desc["lifecycle"] == "candidate" and "input" in desc


def test_failing_candidate_is_refused_with_its_scores(reg_hive: HiveProcess) -> None:
    r = reg_hive.post("/v1/registry/langid@0.9.0/promote", {"to": "preferred"})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "gate_failed"
    ev = err["detail"]["evaluation"]
    assert ev["n"] == len(SHORT) and ev["threshold"] == 0.95 and ev["failed_calls"] == 0
    assert ev["score"] < 0.95 and not ev["passed"]
    assert str(ev["score"]) in err["message"]
    assert _states(reg_hive)["0.9.0"] == "candidate"
    assert _version_called(reg_hive, "langid") == "langid@1.0.0"
    # the CLI says the same, with a failing exit status
    p = _cli(reg_hive, "models", "promote", "langid@0.9.0")
    assert p.returncode == 1 and "gate_failed" in p.stderr, (p.stdout, p.stderr)


def test_eval_promote_rollback_retire(reg_hive: HiveProcess) -> None:
    p = _cli(reg_hive, "eval", "langid@1.1.0")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["passed"] and report["n"] == len(CLEAR) and report["score"] >= 0.8
    shown = _fn(reg_hive)["versions"][2]["evaluation"]
    assert shown["score"] == report["score"] and shown["dataset"].endswith("clear.jsonl")
    assert len(shown["dataset_sha256"]) == 64 and shown["at"] > 0

    r = reg_hive.post("/v1/registry/langid@1.1.0/promote", {"to": "preferred"})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == {"langid@1.0.0": "ready", "langid@1.1.0": "preferred"}
    assert _version_called(reg_hive, "langid") == "langid@1.1.0"
    assert_error(reg_hive.post("/v1/registry/langid@1.1.0/promote", {"to": "preferred"}), 409, "lifecycle_conflict")
    assert_error(reg_hive.post("/v1/registry/langid@1.1.0/promote", {"to": "gone"}), 422, "invalid_input", "to")

    p = _cli(reg_hive, "models", "rollback", "langid")
    assert p.returncode == 0, p.stderr
    assert _states(reg_hive) == {"0.9.0": "candidate", "1.0.0": "preferred", "1.1.0": "ready"}
    assert _version_called(reg_hive, "langid") == "langid@1.0.0"
    # 1.0.0 never replaced anything: nothing further back
    assert_error(reg_hive.post("/v1/registry/langid/rollback", b""), 409, "lifecycle_conflict")

    assert_error(reg_hive.post("/v1/registry/langid@1.0.0/retire", b""), 409, "lifecycle_conflict")
    assert reg_hive.post("/v1/registry/langid@0.9.0/retire", b"").status_code == 200
    assert_error(reg_hive.call("langid@0.9.0", text="hello there"), 410, "retired")
    events = reg_hive.get_json("/v1/registry/langid/history")["events"]
    assert [(e["ref"], e["reason"], e["to_state"]) for e in events] == [
        ("langid@1.1.0", "promote", "preferred"),
        ("langid@1.0.0", "rollback", "preferred"),
        ("langid@0.9.0", "retire", "retired"),
    ]
    assert events[0]["previous"] == "langid@1.0.0" and events[0]["detail"]["evaluation"]["passed"]


def test_states_and_scores_survive_a_gateway_restart(reg_hive: HiveProcess) -> None:
    before = _fn(reg_hive)
    reg_hive.kill("gateway")  # SIGKILL: what was acknowledged must already be on disk
    reg_hive.start_gateway()
    reg_hive.wait_ready(["langid@1.0.0"])
    after = _fn(reg_hive)
    assert _states(reg_hive) == {v["version"]: v["lifecycle"] for v in before["versions"]}
    assert [v["evaluation"] for v in after["versions"]] == [v["evaluation"] for v in before["versions"]]
    assert _version_called(reg_hive, "langid") == before["default"]


def test_unknown_version_and_missing_eval_are_clear_errors(reg_hive: HiveProcess) -> None:
    assert_error(reg_hive.post("/v1/registry/langid@5.0.0/eval", b""), 404, "unknown_function")
    assert_error(reg_hive.post("/v1/registry/langid/eval", b""), 422, "invalid_input", "ref")
    err = assert_error(reg_hive.post("/v1/registry/echo@1.0.0/eval", b""), 422, "invalid_input", "eval")
    assert "declares no [eval]" in err["message"]
