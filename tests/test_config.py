"""hive.toml and manifests are validated up front, with errors that name the file and key.

Unit tests: no processes, except the `manifest validate` CLI run as a subprocess (its exit
code and output are the interface a deployer sees).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import colabhive
import pytest
from colabhive.config import HiveConfig, load_config
from colabhive.errors import ConfigError
from colabhive.manifests import Manifest, ManifestProblem, load_manifests, read_manifest
from hivectl import MANIFESTS, ROOT

# ---- hive.toml -------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[gateway]\nprot = 8700\n", "prot"),
        ("colour = 'blue'\n", "colour"),
        ("[limits]\nmax_text_charz = 10\n", "max_text_charz"),
        ("[nodes]\nname = 'x'\n", "nodes"),
    ],
)
def test_unknown_key_is_a_config_error_naming_it(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, "hive.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"`{key}`" in str(info.value) or key in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[gateway]\nport = "eighty"\n', "gateway.port"),
        ("[gateway]\nport = 70000\n", "gateway.port"),
        ("[limits]\nnode_timeout_s = -1\n", "limits.node_timeout_s"),
        ('[node]\nfunctions = "echo"\n', "node.functions"),
        ('[telemetry]\nexporter = "zipkin"\n', "telemetry.exporter"),
        ("manifest_dirs = 5\n", "manifest_dirs"),
    ],
)
def test_wrong_type_is_a_config_error_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, "hive.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert key in str(info.value)


def test_not_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML"):
        load_config(_write(tmp_path, "hive.toml", "[gateway\nport = 1\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_repo_hive_toml_loads(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "hive.toml")
    assert isinstance(cfg, HiveConfig)
    assert cfg.gateway.port == 8700 and cfg.gateway.host == "127.0.0.1"
    assert cfg.resolve(cfg.manifest_dirs[0]) == MANIFESTS  # relative to the file, not the cwd
    assert cfg.limits.max_text_chars == 20000
    assert load_config(ROOT / "hive.toml", **{"gateway.port": 9999}).gateway.port == 9999


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.telemetry.exporter == "none"
    assert cfg.gateway_url == "http://127.0.0.1:8700"


# ---- manifests -------------------------------------------------------------------------
def test_repo_manifests_are_valid() -> None:
    files = sorted(MANIFESTS.glob("*.toml"))
    assert files, "no manifests in the repo"
    for f in files:
        m, problems = read_manifest(f)
        assert problems == [], problems
        assert isinstance(m, Manifest) and m.file == str(f)
    names = {m.name for m in load_manifests([MANIFESTS])}
    assert {"echo", "minilm-embed"} <= names


BAD_MANIFESTS = {
    "unknown-key.toml": ('name = "a"\ntask = "echo"\ncolour = "red"\n', "colour"),
    "unknown-nested.toml": ('name = "b"\ntask = "echo"\n[batching]\nmax_bach = 3\n', "batching.max_bach"),
    "bad-name.toml": ('name = "Bad Name!"\ntask = "echo"\n', "name"),
    "unknown-task.toml": ('name = "c"\ntask = "telepathy"\n', "task"),
    "missing-package.toml": (
        'name = "d"\ntask = "embedding"\n[source]\npackage = "no_such_weights_pkg_xyz"\n',
        "source.package",
    ),
    "no-source.toml": ('name = "e"\ntask = "embedding"\n', "source"),
    "bad-range.toml": ('name = "f"\ntask = "echo"\n[batching]\nmax_batch = 0\n', "batching.max_batch"),
}


@pytest.fixture
def bad_dir(tmp_path: Path) -> Path:
    d = tmp_path / "manifests"
    d.mkdir()
    for fname, (text, _) in BAD_MANIFESTS.items():
        (d / fname).write_text(text)
    return d


@pytest.mark.parametrize("fname", sorted(BAD_MANIFESTS))
def test_bad_manifest_problem_names_file_and_key(bad_dir: Path, fname: str) -> None:
    _, key = BAD_MANIFESTS[fname]
    _, problems = read_manifest(bad_dir / fname)
    assert problems, f"{fname} passed validation"
    assert all(isinstance(p, ManifestProblem) for p in problems)
    assert any(p.key == key for p in problems), [str(p) for p in problems]
    assert all(p.file == str(bad_dir / fname) for p in problems)
    assert any(str(p).startswith(f"{bad_dir / fname}: {key}: ") for p in problems)


def test_load_manifests_reports_every_problem_at_once(bad_dir: Path) -> None:
    (bad_dir / "dup1.toml").write_text('name = "same"\ntask = "echo"\n')
    (bad_dir / "dup2.toml").write_text('name = "same"\ntask = "echo"\n')
    with pytest.raises(ConfigError) as info:
        load_manifests([bad_dir, bad_dir.parent / "missing-dir"])
    text = str(info.value)
    for fname in BAD_MANIFESTS:
        assert fname in text
    assert "same@1.0.0 is also declared" in text
    assert "missing-dir" in text


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colabhive", "manifest", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_validate_cli_fails_on_bad_dir_with_file_key_reason_lines(bad_dir: Path) -> None:
    r = _validate(bad_dir)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for fname, (_, key) in BAD_MANIFESTS.items():
        prefix = f"{bad_dir / fname}: {key}: "
        hits = [ln for ln in lines if ln.startswith(prefix)]
        assert hits and all(len(h) > len(prefix) for h in hits), f"no '{prefix}<reason>' line in:\n{r.stdout}"
    assert f"{len(BAD_MANIFESTS)} manifest(s)" in r.stdout


def test_validate_cli_passes_repo_manifests() -> None:
    r = _validate(MANIFESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 problem(s)" in r.stdout


def test_validate_cli_checks_one_ensemble_file_against_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "a"\ntask = "language"\n[source]\npackage = "py3langid"\n')
    (tmp_path / "b.toml").write_text('name = "b"\ntask = "language"\n[source]\npackage = "py3langid"\n')
    good = tmp_path / "ab.toml"
    good.write_text('name = "ab"\ntask = "language"\n[ensemble]\nmembers = ["a", "b"]\ncombine = "vote"\n')
    r = _validate(good)  # the members are in other files of the same directory
    assert r.returncode == 0 and "1 manifest(s), 0 problem(s)" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "ax.toml"
    bad.write_text('name = "ax"\ntask = "language"\n[ensemble]\nmembers = ["a", "x"]\ncombine = "vote"\n')
    r = _validate(bad)
    assert r.returncode == 1
    assert f"{bad}: ensemble.members.1: no manifest declares 'x'" in r.stdout, r.stdout


def test_validate_cli_fails_on_missing_path(tmp_path: Path) -> None:
    r = _validate(tmp_path / "nowhere")
    assert r.returncode == 1
    assert "nowhere" in r.stdout


# ---- public API ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "module",
    ["colabhive", "colabhive.errors", "colabhive.config", "colabhive.manifests", "colabhive.sdk", "colabhive.wire"],
)
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__, module
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert missing == [], f"{module}.__all__ names that do not exist: {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__)


def test_top_level_exports_are_the_real_classes() -> None:
    assert colabhive.Client is colabhive.sdk.Client
    assert issubclass(colabhive.HiveError, Exception)
    assert isinstance(colabhive.__version__, str) and colabhive.__version__.count(".") == 2


def test_every_error_code_maps_back_to_its_class() -> None:
    """The SDK rebuilds errors from the wire code, so codes must be unique and round-trip."""
    from colabhive import errors

    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), codes
    for cls in classes:
        assert errors.error_for_code(cls.code) is cls
    assert errors.error_for_code("never-heard-of-it") is errors.HiveError
