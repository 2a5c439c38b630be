"""The models a node holds: which device each went to, and loading them off the poll loop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgspec

from ..manifests import Manifest
from ..runners import RUNNERS, Runner
from ..wire import Device

__all__ = ["Loaded", "ModelCache", "choose_device"]

log = logging.getLogger("colabhive.node")
NO_LIMIT = 1 << 30  # the gateway already enforced hive.toml's text limits


def choose_device(m: Manifest, devices: list[Device]) -> tuple[Device, str] | None:
    """The first device (in the manifest's kind order) with the memory and a dtype it needs."""
    for kind in m.hardware.device_kinds:
        for d in devices:
            if d.kind != kind:
                continue
            if m.hardware.min_memory_mb and d.memory_mb and d.memory_mb < m.hardware.min_memory_mb:
                continue
            dtype = next((t for t in m.hardware.dtypes if t in d.dtypes), None)
            if dtype is not None:
                return d, dtype
    return None


class Loaded:
    __slots__ = ("runner", "input_type", "load_s")

    def __init__(self, runner: Runner, load_s: float) -> None:
        self.runner = runner
        self.input_type: type[msgspec.Struct] = type(runner).input_type(NO_LIMIT)
        self.load_s = load_s


class ModelCache:
    def __init__(self, devices: list[Device], wanted: list[str]) -> None:
        self.devices = devices
        self.wanted = set(wanted)
        self.loaded: dict[str, Loaded] = {}
        self.loading: set[str] = set()
        self.failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self.changed = threading.Event()
        """Set whenever a model finishes loading (or fails), so the poll loop can start at once."""

    def plan(self, manifests: list[Manifest]) -> list[tuple[Manifest, Device, str]]:
        out = []
        for m in manifests:
            # node.functions lists names (every live version) or exact name@version refs
            if self.wanted and m.name not in self.wanted and m.ref not in self.wanted:
                continue
            if m.lifecycle == "retired" or m.ref in self.loaded or m.ref in self.loading or m.task not in RUNNERS:
                continue
            choice = choose_device(m, self.devices)
            if choice is None:
                log.info("not hosting %s: no device here fits %s", m.ref, msgspec.to_builtins(m.hardware))
                continue
            out.append((m, *choice))
        return out

    def load_all(self, plan: list[tuple[Manifest, Device, str]], on_change: Callable[[], None]) -> None:
        """Load each planned model in turn; reports progress through ``on_change``."""
        with self._lock:
            self.loading.update(m.ref for m, _, _ in plan)
        on_change()
        for m, device, dtype in plan:
            t0 = time.perf_counter()
            try:
                runner = RUNNERS[m.task](m, device, dtype)
                runner.load()
            except Exception as exc:  # one bad model must not stop the others
                log.exception("loading %s on %s failed", m.ref, device.id)
                with self._lock:
                    self.failed[m.ref] = f"{type(exc).__name__}: {exc}"
                    self.loading.discard(m.ref)
                on_change()
                continue
            dt = time.perf_counter() - t0
            with self._lock:
                self.loaded[m.ref] = Loaded(runner, dt)
                self.loading.discard(m.ref)
            log.info("loaded %s on %s (%s) in %.2f s", m.ref, device.id, dtype, dt)
            self.changed.set()
            on_change()

    def names(self) -> tuple[list[str], list[str]]:
        with self._lock:
            return sorted(self.loaded), sorted(self.loading)
