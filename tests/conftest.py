"""Fixtures that start real hives (gateway + node processes on loopback).

Module-scoped hives are shared by tests that do not disturb them; fault tests build their
own through ``make_hive``. Processes are always stopped at teardown, and a failing test
gets the logs of every hive it used attached to its report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hivectl import HiveProcess  # noqa: E402
from taskkit import make  # noqa: E402

# Limits small enough that the bad-input tests can cross them cheaply.
TEST_LIMITS: dict[str, Any] = {"max_text_chars": 1000, "max_body_bytes": 65536, "node_timeout_s": 2.0}


class HiveFactory:
    """Builds hives for one test and stops every one of them afterwards."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.hives: list[HiveProcess] = []

    def __call__(self, **sections: dict[str, Any]) -> HiveProcess:
        h = HiveProcess(self._tmp.mktemp("hive"), None, **sections)
        self.hives.append(h)
        return h

    def stop_all(self) -> None:
        for h in self.hives:
            h.stop()


@contextmanager
def _running(h: HiveProcess) -> Iterator[HiveProcess]:
    """Stop the hive however the block ends; print its logs if start-up failed."""
    try:
        yield h
    except BaseException:
        print(h.all_logs(), file=sys.stderr)
        raise
    finally:
        h.stop()


@contextmanager
def serving(
    tmp_path_factory: pytest.TempPathFactory, label: str, functions: list[str], limits: dict[str, Any] | None = None
) -> Iterator[HiveProcess]:
    """A gateway and one node hosting only ``functions`` (all ready), stopped when the block ends."""
    with _running(HiveProcess(tmp_path_factory.mktemp(f"{label}-hive"), limits=dict(limits or TEST_LIMITS))) as h:
        h.start_gateway()
        h.start_node(f"node-{label}", "--functions", ",".join(functions), wait_for=list(functions))
        yield h


def _warm(h: HiveProcess, *functions: str) -> None:
    """One call per function, so tests measure a hive that has served before."""
    for fn in functions:
        text = "warm-up"
        r = h.call(fn, text=text)
        assert r.status_code == 200, f"warm-up call to {fn}: {r.status_code} {r.text}\n{h.all_logs()}"


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node hosting echo and minilm-embed (only those: manifests/ holds more), both ready."""
    with _running(HiveProcess(tmp_path_factory.mktemp("hive"), limits=dict(TEST_LIMITS))) as h:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo,minilm-embed", wait_for=["echo", "minilm-embed"])
        _warm(h, "echo", "minilm-embed")
        yield h


@pytest.fixture(scope="module")
def echo_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node started with ``--functions echo``: minilm-embed has no node (503)."""
    with _running(HiveProcess(tmp_path_factory.mktemp("echo-hive"), limits=dict(TEST_LIMITS))) as h:
        h.start_gateway()
        h.start_node("node-echo", "--functions", "echo", wait_for=["echo"])
        _warm(h, "echo")
        yield h


@pytest.fixture
def make_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveFactory]:
    """A factory of private hives for tests that kill or restart processes."""
    factory = HiveFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


def _hives_of(item: pytest.Item) -> list[HiveProcess]:
    found: list[HiveProcess] = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, HiveProcess):
            found.append(value)
        elif isinstance(value, HiveFactory):
            found.extend(value.hives)
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the logs of every hive a failing test used to its report."""
    rep: pytest.TestReport = yield
    if rep.failed:
        for h in _hives_of(item):
            rep.sections.append((f"hive logs ({h.tmp.name})", h.all_logs()))
    return rep


@pytest.fixture
def new_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A factory of private hives (echo-only nodes), all stopped at teardown."""
    made: list[HiveProcess] = []

    def factory(**limits: Any) -> HiveProcess:
        h = make(tmp_path_factory.mktemp("private-hive"), **limits)
        made.append(h)
        return h

    try:
        yield factory
    finally:
        for h in made:
            h.stop()
