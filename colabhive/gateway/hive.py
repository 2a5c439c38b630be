"""The gateway's state: config, catalog, registry, dispatcher, store and tracer, in one object.

One instance lives on ``app.state.hive``; route handlers reach everything through it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..auth import Auth
from ..datasets import DatasetStore
from ..config import HiveConfig
from ..dispatch import Dispatcher, NodeRegistry, Outcome, Task
from ..dispatch.journal import Journal
from ..dispatch.routing import Router, SiteFigures
from ..errors import HiveError, NotPromoted, Retired, UnknownFunction
from ..manifests import Manifest, load_manifests
from ..registry import Artifact, Lifecycle, artifact_of
from ..families import family
from ..runners import Runner
from ..store import Store
from ..telemetry import setup_tracing
from ..wire import SiteProfile
from .sites import load_sites
from ..wire import Placement
from .planner import Plan, plan_hive

if TYPE_CHECKING:
    from .jobs import JobBoard

__all__ = ["FunctionEntry", "Hive"]

log = logging.getLogger("colabhive.gateway")


@dataclass(slots=True)
class FunctionEntry:
    """One version of a function (``ref`` = name@version)."""

    manifest: Manifest
    runner: type[Runner]
    input_type: type[msgspec.Struct]
    manifest_json: bytes
    artifact: Artifact

    @property
    def ref(self) -> str:
        return self.manifest.ref


class Hive:
    def __init__(self, cfg: HiveConfig) -> None:
        self.cfg = cfg
        self.catalog: dict[str, FunctionEntry] = {}
        """Every version, by ref (name@version); :meth:`resolve` maps a call's name to one."""
        self.sites: dict[str, SiteProfile] = {}
        """Site profiles (``site_dirs``), read with the catalog at start."""
        self.nodes = NodeRegistry(cfg.limits.node_timeout_s)
        self.router = Router(cfg.routing, self.site_figures, self.nodes.get)
        self.dispatcher = Dispatcher(
            self.nodes,
            queue_size=cfg.limits.queue_size,
            lease_s=cfg.limits.lease_s,
            max_attempts=cfg.limits.max_attempts,
            max_wait_ms=self._max_wait_ms,
            max_batch=self._max_batch,
            queue_limit=self.queue_limit,
            router=self.router,
        )
        self.store = Store(cfg.resolve(cfg.state_dir) / "hive.sqlite3")
        self.journal = Journal(self.store)
        self.auth = Auth(self.store, cfg.auth.join_tokens, cfg.auth.api_keys)
        self.lifecycle = Lifecycle(self.store)
        self.evaluations: dict[str, dict[str, Any]] = {}
        """ref → its latest evaluation report (kept in SQLite, shown in the catalog)."""
        self.gateway_tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        """Journaled calls the gateway runs itself (ensembles), by task id: (ref, the running call)."""
        self.watchers: dict[str, list[asyncio.Future[Outcome]]] = {}
        """Sync callers waiting on a durable task (a retried Idempotency-Key)."""
        self.dispatcher.on_handout = self._handed_out
        self.dispatcher.on_finish = self.finish_task
        self.tracer = setup_tracing(cfg, "gateway")
        self._reaper: asyncio.Task[None] | None = None
        self.draining = False
        """Set by the supervisor on SIGTERM: new calls get 503, in-flight ones finish."""
        self.sync_in_flight = 0
        self._plan = Plan()
        self._plan_key: tuple[Any, ...] = ()
        self._synced_plan: Plan | None = None
        self.auto_index: tuple[tuple[int, str], Any] | None = None
        from ..auto.router import LearnedRouter

        self.auto_vectors: OrderedDict[str, list[float]] = OrderedDict()
        """Embedded texts for /v1/auto (the catalog's and recent requests'), bounded, LRU."""
        self.auto_router = LearnedRouter.load(self.cfg.resolve(self.cfg.auto_router))
        """/v1/auto's classifier (``make models``); None: nearest-example routing."""
        """/auto's expert index, with the (lifecycle generation, tenant) it was built for."""
        self.started_at = time.time()
        self.catalog_generation = 0
        """Bumped when a version joins the running catalog: nodes behind it get the manifests again."""
        self.datasets = DatasetStore(self.store, cfg.resolve(cfg.state_dir))
        self.jobs: JobBoard
        """Training jobs (gateway/jobs.py), set by create_app."""

    def site_figures(self, site: str) -> SiteFigures:
        """Grid intensity and price of a site (its profile in nodes/*.toml); zeros if unknown."""
        profile = getattr(self, "sites", {}).get(site)
        if profile is None:
            return SiteFigures()
        return SiteFigures(profile.carbon_g_per_kwh, profile.price_per_gpu_hour)

    def _max_wait_ms(self, fn: str) -> float:
        entry = self.catalog.get(fn)
        return entry.manifest.batching.max_wait_ms if entry else 0.0

    def queue_limit(self, fn: str) -> int:
        entry = self.catalog.get(fn)
        own = entry.manifest.batching.queue_size if entry else 0
        return own or self.cfg.limits.queue_size

    def _max_batch(self, fn: str) -> int:
        entry = self.catalog.get(fn)
        return entry.manifest.batching.max_batch if entry else 1

    def load_catalog(self) -> None:
        """The manifest dirs, plus every version a training job landed (``<state_dir>/trained``)."""
        self.sites = load_sites([self.cfg.resolve(d) for d in self.cfg.site_dirs])
        trained = self.cfg.resolve(self.cfg.state_dir) / "trained"
        landed = sorted(p for p in trained.iterdir() if (p / "manifest.toml").is_file()) if trained.is_dir() else []
        manifests = load_manifests([self.cfg.resolve(d) for d in self.cfg.manifest_dirs] + landed)
        self.catalog = {m.ref: self._entry(m) for m in manifests}

    def _entry(self, m: Manifest) -> FunctionEntry:
        runner = family(m.task).runner
        return FunctionEntry(
            manifest=m,
            runner=runner,
            input_type=runner.input_type(self.cfg.limits.max_text_chars),
            manifest_json=msgspec.json.encode(m),
            artifact=artifact_of(m),
        )

    async def add_version(self, path: Path) -> FunctionEntry:
        """A version that appeared while the hive runs (a training job's result): into the
        catalog as its manifest says (candidate), into the store, out to every node."""
        manifests = load_manifests([path])
        (m,) = manifests
        entry = self._entry(m)
        self.catalog[m.ref] = entry
        await self.lifecycle.add(m)
        await self._save_manifest(entry)
        self.catalog_generation += 1
        self.sync_placement()
        return entry

    def resolve(self, name: str) -> FunctionEntry:
        """``name@version`` pins a version; a plain name runs its preferred (else newest ready) one."""
        if "@" in name:
            entry = self.catalog.get(name)
            if entry is None:
                base = name.split("@", 1)[0]
                known = self.lifecycle.names.get(base)
                if not known:
                    raise UnknownFunction(f"no function named {base!r}; GET /v1/fn lists the catalog")
                raise UnknownFunction(
                    f"{base!r} has no version {name.split('@', 1)[1]!r}; its versions: {', '.join(known)}"
                )
            if self.lifecycle.state(name) == "retired":
                raise Retired(f"{name} is retired; call {name.split('@')[0]!r} for its preferred version")
            return entry
        ref = self.lifecycle.default_ref(name)
        if ref is None:
            known = self.lifecycle.names.get(name)
            if not known:
                raise UnknownFunction(f"no function named {name!r}; GET /v1/fn lists the catalog")
            raise NotPromoted(
                f"{name!r} has no ready or preferred version yet ({', '.join(known)}); "
                "call one by name@version or promote it"
            )
        return self.catalog[ref]

    def serving(self, ref: str) -> bool:
        """A plain version: some node holds it. An ensemble: at least ``quorum`` members are held."""
        entry = self.catalog.get(ref)
        if entry is None or entry.manifest.ensemble is None:
            return self.nodes.serving(ref)
        held = sum(1 for r in self.member_refs(entry) if self.nodes.serving(r))
        return held >= entry.manifest.ensemble.quorum

    def member_refs(self, entry: FunctionEntry) -> list[str]:
        """The version each of an ensemble's members runs now (preferred unless pinned); a member
        with no callable version is left out (it shows up as a failure when called)."""
        refs = []
        for member in entry.manifest.ensemble.members if entry.manifest.ensemble else ():
            try:
                refs.append(self.resolve(member).ref)
            except HiveError:
                continue
        return refs

    def current_plan(self) -> Plan:
        """The placement for the hive as it is now; recomputed only when nodes or states changed."""
        live = [n for n in self.nodes.live() if not n.draining]
        key = (self.lifecycle.generation, tuple((n.id, n.devices is not None) for n in live))
        if key != self._plan_key:
            versions = [(e.manifest, self.lifecycle.state(ref)) for ref, e in self.catalog.items()
                        if e.manifest.ensemble is None]  # ensembles run on the gateway
            wants = {n.id: frozenset(getattr(n, "allowed", ()) or ()) for n in live}
            self._plan = plan_hive(live, versions, wants)
            self._plan_key = key
        return self._plan

    def hosting_for(self, node_id: str) -> list[Placement]:
        return self.current_plan().hosting.get(node_id, [])

    def sync_placement(self) -> None:
        """Give every node whose share of the plan changed its new hosting set, and wake its
        parked poll so the reply carries it. Cheap when nothing changed (called per poll).
        Draining nodes keep what they hold: they are finishing work, not taking new models."""
        plan = self.current_plan()
        if plan is self._synced_plan:
            return
        self._synced_plan = plan
        for rec in self.nodes.live():
            if rec.draining:
                continue
            want = plan.hosting.get(rec.id, [])
            if rec.hosting != want:
                rec.set_hosting(want)
                self.dispatcher.wake_node(rec.id)

    def manifests_for_nodes(self) -> list[bytes]:
        """Each live version's manifest with its current lifecycle state (nodes skip retired)."""
        out = []
        for ref, e in self.catalog.items():
            state = self.lifecycle.state(ref)
            if state == "retired" or e.manifest.ensemble is not None:
                continue
            m = e.manifest if e.manifest.lifecycle == state else msgspec.structs.replace(e.manifest, lifecycle=state)
            out.append(msgspec.json.encode(m))
        return out

    async def start(self) -> None:
        self.load_catalog()
        await self.store.open()
        await self.lifecycle.load([e.manifest for e in self.catalog.values()])
        for row in await self.store.fetch("latest_evaluations"):
            if row["ref"] in self.catalog:
                self.evaluations[row["ref"]] = json.loads(row["report"]) | {"artifact_sha256": row["artifact_sha256"]}
        for e in self.catalog.values():
            await self._save_manifest(e)
        await self.journal.start()
        self._reaper = asyncio.create_task(self._reap_loop())

    async def _save_manifest(self, e: FunctionEntry) -> None:
        m = e.manifest
        await self.store.execute("replace_manifest", {
            "ref": m.ref, "name": m.name, "version": m.version, "task": m.task,
            "lifecycle": self.lifecycle.state(m.ref), "body": e.manifest_json.decode(), "file": m.file,
            "now": time.time()})

    def _handed_out(self, task: Task) -> None:
        self.journal.running(task.id, task.node_id or "", task.attempts)

    def finish_task(self, task: Task, outcome: Outcome | None, error: HiveError | None) -> None:
        """Record how a journaled task ended and wake sync callers waiting on it (the dispatcher's
        ``on_finish``, and the gateway's own ensemble calls)."""
        err = error or (outcome.error if outcome else None)
        if err is not None:
            self.journal.finish(
                task.id, "failed", error={"code": err.code, "message": err.message},
                node_id=outcome.node_id if outcome else None, attempts=task.attempts,
            )
        elif outcome is not None:
            self.journal.finish(
                task.id, "succeeded", output=outcome.output, node_id=outcome.node_id,
                run_ms=outcome.run_ms, attempts=task.attempts, energy_j=outcome.energy_j,
                energy_estimated=outcome.energy_estimated, carbon_g=outcome.carbon_g, dtype=outcome.dtype,
            )
        for fut in self.watchers.pop(task.id, []):
            if fut.done():
                continue
            if outcome is not None:
                fut.set_result(outcome)
            elif err is not None:
                fut.set_exception(err)

    async def stop(self) -> None:
        for _, run in list(self.gateway_tasks.values()):  # journaled: replayed at the next start
            run.cancel()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.journal.stop()
        await self.store.close()

    async def _reap_loop(self) -> None:
        period = min(0.5, self.cfg.limits.node_timeout_s / 4)
        last_purge = 0.0
        while True:
            await asyncio.sleep(period)
            try:
                self.dispatcher.reap(time.monotonic())
                self.sync_placement()  # a node that went silent no longer counts
                if time.monotonic() - last_purge > min(60.0, self.cfg.limits.result_ttl_s / 2):
                    last_purge = time.monotonic()
                    await self.journal.purge(self.cfg.limits.result_ttl_s)
            except Exception:  # the reaper must outlive any single bad record
                log.exception("reaper pass failed")

    def schemas(self, entry: FunctionEntry) -> dict[str, Any]:
        return entry.runner.schemas(self.cfg.limits.max_text_chars)
