"""LoRA adapters held on one base, loaded on demand and evicted least recently used first.

An expert group is one base and many small adapters: the base is loaded once (wrapped as a
PeftModel by :func:`wrap_base`) and each adapter is read from disk the first time a request
needs it, then kept while the bytes of adapter weight held stay within a budget
(``experts.adapter_memory_mb``). Over it, adapters that no running row uses go, least recently
used first. When the adapters in use alone exceed the budget the cache still loads what a
request needs (a call never fails for want of room) and counts it in ``over_budget``.

Threads: :meth:`AdapterCache.ensure` (which loads and deletes) is called only by the
generation engine's thread, between two forward passes, so the PeftModel never changes under
a pass; the counters and :meth:`AdapterCache.held` are read under the cache's own lock from
any thread (the node's heartbeat).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AdapterCache", "AdapterStats", "PLACEHOLDER", "wrap_base"]

log = logging.getLogger("colabhive.node")

PLACEHOLDER = "__idle__"
"""An inert adapter (rank 1, zero B) the PeftModel is built with: peft wants one, and every
pass names its rows' adapters, so it is never applied."""
RESERVED = frozenset({PLACEHOLDER, "__base__"})


def wrap_base(model: Any) -> Any:
    """The base as a PeftModel holding only the inert placeholder, ready for :meth:`AdapterCache.ensure`."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=1, lora_alpha=1, target_modules=["q_proj"], lora_dropout=0.0, bias="none")
    return get_peft_model(model, config, adapter_name=PLACEHOLDER).eval()


@dataclass(slots=True)
class AdapterStats:
    """What the cache has done since it was made (tests, telemetry)."""

    loads: int = 0
    """Adapters read from disk (a reload after an eviction counts again)."""
    hits: int = 0
    """Requests for an adapter that was already held."""
    evictions: int = 0
    over_budget: int = 0
    """Times the adapters in use alone held more than the budget (what they needed was loaded anyway)."""


class AdapterCache:
    """The adapters held on one PeftModel: name → path to load from, LRU by bytes."""

    def __init__(self, model: Any, budget_bytes: int, paths: Mapping[str, str | Path] | None = None) -> None:
        self.model = model
        self.budget = budget_bytes
        self.paths: dict[str, Path] = {}
        for name, path in (paths or {}).items():
            self.register(name, path)
        self.stats = AdapterStats()
        self.on_evict: list[Callable[[str], None]] = []
        """Called with an evicted adapter's name (the engine drops its prefix cache)."""
        self._held: OrderedDict[str, tuple[int, float]] = OrderedDict()
        """name → (bytes, last used, unix time); least recently used first."""
        self._lock = threading.Lock()

    def register(self, name: str, path: str | Path) -> None:
        """Where adapter ``name`` is loaded from (a PEFT ``save_pretrained`` directory)."""
        if name in RESERVED:
            raise ValueError(f"{name!r} is reserved; name the adapter otherwise")
        self.paths[name] = Path(path)

    @property
    def bytes(self) -> int:
        """Adapter weight held now, in bytes."""
        with self._lock:
            return sum(b for b, _ in self._held.values())

    def held(self) -> list[dict[str, Any]]:
        """The adapters held, least recently used first: ``{name, bytes, last_used}`` (unix time)."""
        with self._lock:
            return [{"name": n, "bytes": b, "last_used": t} for n, (b, t) in self._held.items()]

    def ensure(self, names: Iterable[str], in_use: Iterable[str] = ()) -> None:
        """Make ``names`` resident (engine thread only); evict what fits the budget and no row in
        ``in_use`` (nor ``names``) needs. Unknown names raise KeyError before anything changes."""
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if n not in self.paths]
        if missing:
            raise KeyError(f"no adapter registered as {', '.join(missing)}")
        keep = set(in_use) | set(wanted)
        for name in wanted:
            now = time.time()
            with self._lock:
                if name in self._held:
                    self._held[name] = (self._held[name][0], now)
                    self._held.move_to_end(name)
                    self.stats.hits += 1
                    continue
            self._load(name, now)
        self._evict(keep)

    def _load(self, name: str, now: float) -> None:
        self.model.load_adapter(str(self.paths[name]), adapter_name=name, is_trainable=False)
        self.model.eval()
        size = _adapter_bytes(self.model, name)
        with self._lock:
            self._held[name] = (size, now)
            self.stats.loads += 1
        log.info("loaded adapter %s (%.1f MB) from %s", name, size / 1e6, self.paths[name])

    def _evict(self, keep: set[str]) -> None:
        while True:
            with self._lock:
                total = sum(b for b, _ in self._held.values())
                if total <= self.budget:
                    return
                victim = next((n for n in self._held if n not in keep), None)
                if victim is None:
                    self.stats.over_budget += 1
                    log.warning("adapters in use hold %.1f MB, over the %.1f MB budget",
                                total / 1e6, self.budget / 1e6)
                    return
                del self._held[victim]
                self.stats.evictions += 1
            self.model.delete_adapter(victim)
            for callback in self.on_evict:
                callback(victim)


def _adapter_bytes(model: Any, name: str) -> int:
    """Bytes of the parameter tensors adapter ``name`` added (its lora_A/lora_B/... weights)."""
    pattern = re.compile(rf"\.lora_\w+\.{re.escape(name)}(\.|$)")
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if pattern.search(n))
