"""Lifecycle of versions: candidate → ready → preferred, plus retired; rollback is one step.

A manifest declares where a version starts; every change made on the running hive is
kept in SQLite (``model_states``) and wins over the file from then on, with an event log
(``lifecycle_events``) that says who replaced whom, so rollback knows where to go back to.
At most one version of a name is preferred at any time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import LifecycleConflict
from ..manifests import Manifest
from ..store import Store

__all__ = ["Lifecycle", "LifecycleError", "RANK", "version_key"]

RANK = {"retired": 0, "candidate": 1, "ready": 2, "preferred": 3}


LifecycleError = LifecycleConflict


def version_key(version: str) -> tuple[int, Any]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


class Lifecycle:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.states: dict[str, str] = {}
        self.names: dict[str, list[str]] = {}
        """name → its refs, oldest version first."""
        self.generation = 0
        """Bumped on every state change (placement replans when it moves)."""

    async def load(self, manifests: list[Manifest]) -> None:
        """Manifest states, overridden by what the hive changed; one preferred per name."""
        saved = {r["ref"]: r["lifecycle"] for r in await self.store.fetch("model_states")}
        by_name: dict[str, list[Manifest]] = {}
        for m in manifests:
            by_name.setdefault(m.name, []).append(m)
        for name, ms in by_name.items():
            ms.sort(key=lambda m: version_key(m.version))
            self.names[name] = [m.ref for m in ms]
            for m in ms:
                self.states[m.ref] = saved.get(m.ref, m.lifecycle)
            preferred = [m.ref for m in ms if self.states[m.ref] == "preferred"]
            # two preferred: the one the hive chose (saved) wins, else the newest version
            keep = next((r for r in reversed(preferred) if saved.get(r) == "preferred"), preferred[-1] if preferred else None)
            for r in preferred:
                if r != keep:
                    self.states[r] = "ready"

    async def add(self, m: Manifest) -> None:
        """A version that joined the running hive (a training job's result) in its declared state;
        one that claims preferred while another is preferred starts as ready."""
        refs = self.names.setdefault(m.name, [])
        if m.ref not in refs:
            refs.append(m.ref)
            refs.sort(key=lambda r: version_key(r.split("@", 1)[1]))
        state = m.lifecycle if not (m.lifecycle == "preferred" and self.preferred(m.name)) else "ready"
        self.states[m.ref] = state
        self.generation += 1
        now = time.time()
        await self.store.execute("save_model_state", {"ref": m.ref, "name": m.name, "lifecycle": state, "now": now})
        await self._event(m.ref, "new", state, None, "trained", {"file": m.file}, now)

    def state(self, ref: str) -> str:
        return self.states[ref]

    def preferred(self, name: str) -> str | None:
        return next((r for r in self.names.get(name, []) if self.states[r] == "preferred"), None)

    def default_ref(self, name: str) -> str | None:
        """What a call to plain ``name`` runs: the preferred version, else the newest ready one."""
        pref = self.preferred(name)
        if pref is not None:
            return pref
        return next((r for r in reversed(self.names.get(name, [])) if self.states[r] == "ready"), None)

    async def _set(self, ref: str, to: str, now: float) -> None:
        self.states[ref] = to
        self.generation += 1
        await self.store.execute("save_model_state", {"ref": ref, "name": ref.split("@")[0], "lifecycle": to, "now": now})

    async def _event(self, ref: str, frm: str, to: str, previous: str | None, reason: str, detail: Any, now: float) -> None:
        await self.store.execute(
            "insert_lifecycle_event",
            {"name": ref.split("@")[0], "ref": ref, "from_state": frm, "to_state": to, "previous": previous,
             "reason": reason, "detail": json.dumps(detail) if detail is not None else None, "now": now},
        )

    def check_promotion(self, ref: str, to: str) -> None:
        cur = self.states[ref]
        if to not in ("ready", "preferred"):
            raise LifecycleError(f"promotion goes to 'ready' or 'preferred', not {to!r}")
        if RANK[to] <= RANK[cur]:
            raise LifecycleError(f"{ref} is already {cur}; promoting it to {to} would not move it forward")

    async def promote(self, ref: str, to: str, detail: Any) -> dict[str, str]:
        """Move ``ref`` to ``to`` (the gate has been passed); returns every state that changed."""
        self.check_promotion(ref, to)
        now = time.time()
        name, cur = ref.split("@")[0], self.states[ref]
        changed: dict[str, str] = {}
        previous = self.preferred(name) if to == "preferred" else None
        if previous is not None:
            await self._set(previous, "ready", now)
            changed[previous] = "ready"
        await self._set(ref, to, now)
        changed[ref] = to
        await self._event(ref, cur, to, previous, "promote", detail, now)
        return changed

    async def rollback(self, name: str) -> dict[str, str]:
        """Make the version that the current preferred one replaced preferred again."""
        current = self.preferred(name)
        if current is None:
            raise LifecycleError(f"{name} has no preferred version to roll back from")
        rows = await self.store.fetch("last_promotion_to_preferred", {"ref": current})
        previous = rows[0]["previous"] if rows else None
        if previous is None:
            raise LifecycleError(f"{current} did not replace another preferred version; nothing to roll back to")
        if previous not in self.states or self.states[previous] == "retired":
            raise LifecycleError(f"{previous}, which {current} replaced, is retired or gone; promote a version instead")
        now = time.time()
        await self._set(current, "ready", now)
        await self._set(previous, "preferred", now)
        await self._event(previous, "ready", "preferred", None, "rollback", {"from": current}, now)
        return {current: "ready", previous: "preferred"}

    async def retire(self, ref: str) -> dict[str, str]:
        cur = self.states[ref]
        if cur == "preferred":
            raise LifecycleError(f"{ref} is preferred; promote another version or roll back before retiring it")
        if cur == "retired":
            raise LifecycleError(f"{ref} is already retired")
        now = time.time()
        await self._set(ref, "retired", now)
        await self._event(ref, cur, "retired", None, "retire", None, now)
        return {ref: "retired"}

    async def history(self, name: str) -> list[dict[str, Any]]:
        rows = await self.store.fetch("lifecycle_events_of", {"name": name})
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else None
        return rows
