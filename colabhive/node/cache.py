"""The models a node holds: which device each went to, and loading them off the poll loop.

Two modes. With an older gateway (``hosting`` is None at registration) the node chooses:
every manifest its hardware fits, filtered by ``node.functions``. With a gateway that
plans placement, the node holds exactly the desired set it was last sent (see
:mod:`.reconcile`): the loader thread loads what is missing, one model at a time, and
anything no longer listed is dropped and its memory given back to the device.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

import msgspec

from ..manifests import Manifest
from ..runners.base import LOAD_LOCK
from ..families import family, find
from ..runners import Runner
from ..wire import Device, HeldAdapter, Placement
from .dtype_guard import load_guarded
from .reconcile import allowed_by, diff

__all__ = ["Loaded", "ModelCache", "choose_device"]

log = logging.getLogger("colabhive.node")
NO_LIMIT = 1 << 30  # the gateway already enforced hive.toml's text limits
Step = tuple[Manifest, Device, str]


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
    __slots__ = ("runner", "input_type", "load_s", "placed_dtype", "dtype_note")

    def __init__(self, runner: Runner, load_s: float, placed_dtype: str = "", dtype_note: str = "") -> None:
        self.runner = runner
        self.input_type: type[msgspec.Struct] = type(runner).input_type(NO_LIMIT)
        self.load_s = load_s
        self.placed_dtype = placed_dtype or runner.dtype
        """The dtype the placement asked for; the runner's may be fp32 where a guard failed."""
        self.dtype_note = dtype_note

    @property
    def placement(self) -> tuple[str, str]:
        """What this copy satisfies: a guard's fp32 fallback still answers its bf16 placement
        (else the node would drop and reload it for ever)."""
        return self.runner.device.id, self.placed_dtype


class ModelCache:
    def __init__(
        self, devices: list[Device], wanted: list[str], release: Callable[[Device], None] = lambda d: None
    ) -> None:
        self.devices = devices
        self.wanted = list(wanted)
        self.release = release
        """Gives a device the memory of dropped models back (the hardware plugin's hook)."""
        self.resolve: Callable[[Manifest], Manifest] = lambda m: m
        """Points a trained version's manifest at its fetched files (node/artifacts.py)."""
        self.loaded: dict[str, Loaded] = {}
        self.loading: set[str] = set()
        self.failed: dict[str, str] = {}
        self.manifests: dict[str, Manifest] = {}
        self.desired: list[Placement] | None = None
        """The gateway's placement for this node; None: the node chooses (:meth:`plan`)."""
        self._planned: list[Step] = []
        self._failed_at: dict[str, tuple[str, str]] = {}
        self._current: tuple[str, str, str] | None = None
        self._reported: dict[str, str] = {}
        self._running = False
        self._lock = threading.Lock()
        self.changed = threading.Event()
        """Set whenever a model finishes loading (or fails), so the poll loop can start at once."""

    # ---- what to hold ------------------------------------------------------------------
    def plan(self, manifests: list[Manifest]) -> list[Step]:
        """The node's own choice (older gateways): every fitting manifest ``node.functions`` admits."""
        out = []
        for m in manifests:
            if not allowed_by(self.wanted, m):
                continue
            if m.lifecycle == "retired" or m.ref in self.loaded or find(m.task) is None:
                continue
            choice = choose_device(m, self.devices)
            if choice is None:
                log.info("not hosting %s: no device here fits %s", m.ref, msgspec.to_builtins(m.hardware))
                continue
            out.append((m, *choice))
        return out

    def set_manifests(self, manifests: list[Manifest], hosting: list[Placement] | None) -> None:
        """At (re-)registration: the catalog, and whether the gateway plans placement."""
        with self._lock:
            self.manifests = {m.ref: m for m in manifests}
            self.failed.clear()  # a new registration is a fresh chance for what failed
            self._failed_at.clear()
            self.desired = None if hosting is None else list(hosting)
        self._planned = self.plan(manifests) if hosting is None else []
        with self._lock:
            self._announce()

    def update_manifests(self, manifests: list[Manifest]) -> None:
        """The catalog grew (a trained version landed): the new manifests, keeping what is held."""
        with self._lock:
            self.manifests = {m.ref: m for m in manifests}
            self._announce()

    def set_desired(self, hosting: list[Placement]) -> bool:
        """A new desired set from the gateway; False when it is the one already held."""
        with self._lock:
            if self.desired is not None and set(self.desired) == set(hosting):
                return False
            self.desired = list(hosting)
            self._announce()
        return True

    def _held(self) -> dict[str, tuple[str, str]]:
        held = {ref: ld.placement for ref, ld in self.loaded.items()}
        if self._current is not None:
            ref, dev, dtype = self._current
            held[ref] = (dev, dtype)
        return held

    def _pending(self) -> list[Step]:
        if self.desired is None:
            return [s for s in self._planned if s[0].ref not in self.loaded and s[0].ref not in self.failed]
        d = diff(self.desired, self._held(), self.manifests, self.devices, self.wanted)
        for ref, why in d.problems.items():
            if self._reported.get(ref) != why:
                self._reported[ref] = why
                log.warning("cannot host %s as placed: %s", ref, why)
        return [s for s in d.load if self._failed_at.get(s[0].ref) != (s[1].id, s[2])]

    def _announce(self) -> None:
        """Report every pending load as ``loading`` at once: the gateway keeps sync calls for
        a function waiting (instead of a 503) while some node says it is on its way."""
        self.loading = {m.ref for m, _, _ in self._pending()}
        if self._current is not None:
            self.loading.add(self._current[0])

    def pending(self) -> list[Step]:
        with self._lock:
            return self._pending()

    def extras(self) -> list[str]:
        """Loaded refs the desired set no longer lists as held (none when the node chooses)."""
        with self._lock:
            if self.desired is None:
                return []
            return [r for r in diff(self.desired, self._held(), {}, self.devices).unload if r in self.loaded]

    # ---- loading and dropping ------------------------------------------------------------
    def claim_loader(self) -> bool:
        """True (and the loader is then the caller's to start) when no loader thread runs."""
        with self._lock:
            if self._running:
                return False
            self._running = True
            return True

    def unload(self, refs: list[str]) -> list[str]:
        """Drop these models and give their memory back; returns the refs actually dropped.

        A batch running on one keeps its own reference and finishes; the memory goes when it does.
        """
        with self._lock:
            dropped = {r: self.loaded.pop(r) for r in refs if r in self.loaded}
            self._announce()
        if not dropped:
            return []
        devices = {ld.runner.device.id: ld.runner.device for ld in dropped.values()}
        for ref, where in [(r, ld.runner.device.id) for r, ld in dropped.items()]:
            log.info("unloaded %s from %s (no longer placed here)", ref, where)
        dropped_refs = list(dropped)
        dropped.clear()
        gc.collect()  # models hold reference cycles; free them before asking the device
        for d in devices.values():
            self.release(d)
        return dropped_refs

    def run(self, on_change: Callable[[], None]) -> None:
        """The loader thread: load what is pending, one model at a time, until nothing is.

        The pending set is recomputed after every model, so a desired set that changes
        mid-way is followed without restarting anything. Call only after :meth:`claim_loader`.
        """
        done = False
        try:
            while True:
                with self._lock:
                    steps = self._pending()
                    if not steps:
                        # released under the lock that saw nothing pending: a desired set
                        # arriving after this claims a fresh loader instead of being missed
                        self._current = None
                        self._announce()
                        self._running, done = False, True
                        break
                    m, device, dtype = steps[0]
                    self._current = (m.ref, device.id, dtype)
                    self._announce()
                on_change()
                self._load(m, device, dtype)
                self.changed.set()
                self.unload(self.extras())  # placed elsewhere while it was loading
                on_change()
        finally:
            if not done:  # an exception escaped: let a later call start a loader again
                with self._lock:
                    self._running = False
                    self._current = None
        on_change()

    def _load(self, m: Manifest, device: Device, dtype: str) -> None:
        t0 = time.perf_counter()
        try:
            resolved, runner_type = self.resolve(m), family(m.task).runner
            with LOAD_LOCK:  # a training job may be loading its base in another thread
                runner, note = load_guarded(resolved, dtype, lambda dt: runner_type(resolved, device, dt))
        except Exception as exc:  # one bad model must not stop the others
            log.exception("loading %s on %s failed", m.ref, device.id)
            with self._lock:
                self.failed[m.ref] = f"{type(exc).__name__}: {exc}"
                self._failed_at[m.ref] = (device.id, dtype)
                self._current = None
            return
        dt = time.perf_counter() - t0
        with self._lock:
            self.loaded[m.ref] = Loaded(runner, dt, dtype, note)
            self._current = None
        log.info("loaded %s on %s (%s) in %.2f s%s", m.ref, device.id, runner.dtype, dt, f": {note}" if note else "")

    def adapters(self) -> dict[str, list[HeldAdapter]]:
        """ref → the LoRA adapters its runner holds, for runners that hold some (expert groups)."""
        with self._lock:
            held = dict(self.loaded)
        out: dict[str, list[HeldAdapter]] = {}
        for ref, ld in held.items():
            get = getattr(ld.runner, "adapters_held", None)
            if get is not None:
                out[ref] = [HeldAdapter(name=a["name"], bytes=a["bytes"], last_used=round(a["last_used"], 3))
                            for a in get()]
        return out

    def names(self) -> tuple[list[str], list[str]]:
        with self._lock:
            return sorted(self.loaded), sorted(self.loading)

    def dtypes(self) -> tuple[dict[str, str], dict[str, str]]:
        """ref → the dtype it runs in, and ref → why (where there is something to say)."""
        with self._lock:
            held = dict(self.loaded)
        return ({r: ld.runner.dtype for r, ld in held.items()},
                {r: ld.dtype_note for r, ld in held.items() if ld.dtype_note})
