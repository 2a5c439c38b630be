"""Experts jobs on the gateway: partition the data, one child job per partition, the group as one function.

A job of method ``experts`` is a parent that never goes to a node. Submitting it reads the
dataset, embeds every prompt through the hive's own embedding function (the same MiniLM space
a group call is routed in), asks the base for each row's loss when the strategy is
``difficulty``, and partitions (``colabhive.training.partition``). ``?dry_run=true`` stops
there and answers the partitions. Otherwise each partition becomes a stored dataset of its own
and an ordinary child job of ``expert_method`` (leased, checkpointed and resumed like any job,
so children train side by side on whichever nodes are free). The parent's state (its children,
their partitions' centroids) is a JSON file next to its checkpoints, so a gateway restart
picks the group up where it was.

When the last child lands, the group is registered as ``spec.output``: a generated manifest of
task ``experts`` whose ``[experts]`` lists every member's adapter artifact, centroid, taxon and
held-out score, and whose ``[eval]`` is the union of the children's held-out rows (each row was
held out of the one expert that could have seen it), so the group is gated like any version.
A child that fails past its retries fails the parent; the other children still land as their
own versions (their work is kept), but no group is registered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..errors import Conflict, HiveError
from ..families import family
from ..recipes.provenance import artifact_digest
from ..training.methods import get_method
from ..training.methods.experts import GROUP_TASK, ExpertsHParams
from ..training.errors import InvalidSpec
from ..training.partition import Partitioning, partition
from ..training.spec import Budget, DatasetRef, JobSpec
from ..training.tomlout import dumps
from .experts_parts import (
    EXAMPLE_CHARS, example_prompts, member_names, once, read_rows, share_steps, source_doc,
)
from .invoke import call_function

if TYPE_CHECKING:
    from .jobs import Job, JobBoard

__all__ = ["ExpertGroups", "Group"]

log = logging.getLogger("colabhive.gateway")
CONCURRENCY = 32
"""Embedding (or scoring) calls in flight at once: enough to fill a node's batch."""
EXAMPLES_PER_PART = 3
STATE_FILE = "experts.json"


@dataclass(slots=True)
class Group:
    """A parent job as the gateway holds it while its children train."""

    id: str
    tenant: str
    spec: JobSpec
    hparams: ExpertsHParams
    children: list[dict[str, Any]] = field(default_factory=list)
    """Per partition: job, member, taxon, size, steps, centroid, status, step, result."""
    strategy: str = ""
    note: str = ""
    status: str = "running"
    started: float = 0.0


class ExpertGroups:
    """The board's experts parents: planning, children, registration (``JobBoard.groups``)."""

    def __init__(self, board: JobBoard) -> None:
        self.board = board
        self.hive = board.hive
        self.groups: dict[str, Group] = {}
        self.parent_of: dict[str, str] = {}
        """Child job id → its parent's."""

    # ---- planning ---------------------------------------------------------------------------
    async def plan(self, spec: JobSpec, hp: ExpertsHParams, tenant: str) -> tuple[Partitioning, list[dict[str, Any]], str]:
        """(partitioning, rows, prompt column) of the job's dataset; InvalidSpec says what stops it."""
        expert = get_method(hp.expert_method)
        assert spec.base is not None
        base = self.hive.resolve(spec.base).manifest
        if base.task not in expert.base_tasks:
            raise InvalidSpec(f"{expert.name} experts train on a {' or '.join(sorted(expert.base_tasks))} model; "
                              f"{base.ref} is a {base.task} function", field="base")
        path, fmt = await self.hive.datasets.locate(spec.dataset.id)
        rows = await asyncio.to_thread(read_rows, path, fmt, hp.max_rows)
        text_role, target_role = expert.roles[:2]  # (prompt, response) or (text, label): routed on the first
        prompt_col = spec.dataset.columns.get(text_role, text_role)
        response_col = spec.dataset.columns.get(target_role, target_role)
        for role, col in ((text_role, prompt_col), (target_role, response_col)):
            missing = next((i for i, r in enumerate(rows) if r.get(col) in (None, "")), None)
            if missing is not None:
                raise InvalidSpec(f"row {missing + 1} has no {role} (column {col!r})", field=f"dataset.columns.{role}")
        texts = [str(r[prompt_col]) for r in rows]
        embeddings = np.asarray(await self._embed(texts, tenant), dtype=np.float32)
        column_values = losses = None
        p = hp.partition
        if p.strategy == "column":
            assert p.column is not None
            if p.column not in rows[0]:
                raise InvalidSpec(f"the dataset has no column {p.column!r}; its columns: {', '.join(rows[0])}",
                                   field="hparams.partition.column")
            column_values = ["" if r.get(p.column) is None else str(r[p.column]) for r in rows]
        elif p.strategy == "difficulty":
            losses = await self._losses(spec, texts, [str(r[response_col]) for r in rows], tenant)
        try:
            result = await asyncio.to_thread(partition, p, texts, embeddings, column_values=column_values, losses=losses)
        except ValueError as exc:
            quoted = re.search(r"`([a-z_.]+)`", str(exc))
            fld = quoted[1] if quoted else "hparams.partition"
            raise InvalidSpec(str(exc), field=fld if fld.startswith("hparams.") or not fld.startswith("partition")
                               else f"hparams.{fld}") from None
        return result, rows, prompt_col

    async def _embed(self, texts: list[str], tenant: str) -> list[list[float]]:
        from .auto_routes import _embedder

        try:
            ref = _embedder(self.hive)
        except HiveError as exc:
            raise InvalidSpec(f"partitioning embeds every prompt: {exc.message}", field="hparams.partition") from None
        fam = family(self.hive.catalog[ref].manifest.task)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(text: str) -> list[float]:
            async with gate:
                reply = await call_function(self.hive, ref, msgspec.json.encode(fam.text_body(text[:2000])), {}, tenant)
            return fam.vector_of(msgspec.json.decode(reply.body))

        return list(await asyncio.gather(*(one(t) for t in texts)))

    async def _losses(self, spec: JobSpec, prompts: list[str], replies: list[str], tenant: str) -> list[float]:
        """The base's per-example loss (its own scoring mode: mean NLL of the reply tokens)."""
        assert spec.base is not None
        ref = self.hive.resolve(spec.base).ref
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(prompt: str, reply: str) -> float:
            body = {"messages": [{"role": "user", "content": prompt}], "score": reply, "max_tokens": 1}
            async with gate:
                out = await call_function(self.hive, ref, msgspec.json.encode(body), {}, tenant)
            return float(msgspec.json.decode(out.body)["loss"])

        return list(await asyncio.gather(*(one(p, r) for p, r in zip(prompts, replies, strict=True))))

    def dry_run(self, spec: JobSpec, hp: ExpertsHParams, result: Partitioning, rows: list[dict[str, Any]],
                prompt_col: str) -> dict[str, Any]:
        sizes = [p.size for p in result.parts]
        steps = share_steps(spec.budget.max_steps or 0, sizes, hp.steps, hp.min_steps)
        names = member_names(spec.output_name, [p.taxon for p in result.parts])
        parts = [{
            "index": p.index, "taxon": p.taxon, "member": f"{names[i]}@{spec.output_version}", "size": p.size,
            "steps": steps[i], "terms": p.terms, "loss": list(p.loss) if p.loss else None,
            "examples": [str(rows[j][prompt_col])[:EXAMPLE_CHARS] for j in p.examples[:EXAMPLES_PER_PART]],
            "centroid": [round(x, 4) for x in p.centroid],
        } for i, p in enumerate(result.parts)]
        return {"dry_run": True, "method": "experts", "output": spec.output, "strategy": result.strategy,
                "rows": len(rows), "k": len(result.parts), "k_chosen": result.k_chosen,
                "silhouette": result.silhouette, "merged": msgspec.to_builtins(result.merged), "note": result.note,
                "partitions": parts}

    # ---- submitting ---------------------------------------------------------------------------
    async def submit(self, spec: JobSpec, hp: ExpertsHParams, tenant: str, dry_run: bool) -> dict[str, Any]:
        result, rows, prompt_col = await self.plan(spec, hp, tenant)
        doc = self.dry_run(spec, hp, result, rows, prompt_col)
        if dry_run:
            return doc
        if len(result.parts) < 2:
            raise InvalidSpec(f"the data makes {len(result.parts)} partition; a group needs at least 2 ({result.note})",
                               field="hparams.partition")
        outputs = [p["member"] for p in doc["partitions"]]
        for out in outputs:
            if out in self.hive.catalog or await self.hive.store.fetch("job_output_taken", {"output": out}):
                raise Conflict(f"member {out} of this group already exists; choose a new version", field="output")
        if await self.hive.store.fetch("job_output_taken", {"output": spec.output}):
            raise Conflict(f"another job already produces {spec.output}; choose a new version", field="output")
        group = Group(id=uuid.uuid4().hex, tenant=tenant, spec=spec, hparams=hp, strategy=result.strategy,
                      note=result.note, started=time.time())
        spec_json = msgspec.json.encode(spec)
        await self.hive.store.execute("insert_job", {
            "id": group.id, "tenant": tenant, "spec": spec_json.decode(), "method": "experts", "output": spec.output,
            "total_steps": sum(p["steps"] for p in doc["partitions"]), "created_at": time.time()})
        await self.hive.store.execute("start_job", {"id": group.id, "now": time.time()})
        await self.hive.datasets.use(spec.dataset.id, group.id, tenant)
        self.groups[group.id] = group
        self.board._seq[group.id] = 0
        # largest first: children are leased in submission order, so the longest one starts first and
        # the nodes finish together (LPT) rather than the biggest expert running alone at the end
        for part, info in sorted(zip(result.parts, doc["partitions"], strict=True), key=lambda pi: -pi[1]["steps"]):
            lines = b"".join(msgspec.json.encode(rows[i]) + b"\n" for i, a in enumerate(result.assignments)
                             if a == part.index)
            ds, _ = await self.hive.datasets.ingest(once(lines), fmt="jsonl", name=f"{info['member']}.jsonl",
                                                   tenant=tenant, max_bytes=self.hive.cfg.limits.max_dataset_bytes)
            child = msgspec.structs.replace(
                spec, method=hp.expert_method, output=info["member"], hparams=hp.expert_hparams,
                dataset=DatasetRef(id=ds.id, columns=spec.dataset.columns),
                budget=Budget(max_steps=info["steps"], max_minutes=spec.budget.max_minutes))
            view = await self.board.submit(msgspec.json.encode(child), tenant)
            self.parent_of[view["id"]] = group.id
            group.children.append({"job": view["id"], "member": info["member"], "taxon": part.taxon,
                                   "size": part.size, "steps": info["steps"], "centroid": part.centroid,
                                   "status": "queued", "step": 0, "result": None})
            self._save(group)
        await self._parent_event(group, "status", {"status": "running", "children": [c["job"] for c in group.children],
                                                   "note": result.note})
        return await self.board.view(group.id, tenant) | {"partitions": doc["partitions"]}

    # ---- children ending ------------------------------------------------------------------------
    async def child_finished(self, job: Job, status: str, result: dict[str, Any] | None,
                             error: dict[str, Any] | None) -> None:
        group = self.groups.get(self.parent_of.get(job.id, ""))
        if group is None:
            return
        child = next(c for c in group.children if c["job"] == job.id)
        child.update(status=status, step=job.step, result=result, error=error)
        self._save(group)
        await self._parent_event(group, "child", {"job": job.id, "member": child["member"], "taxon": child["taxon"],
                                                  "status": status, **({"error": error} if error else {})})
        if group.status != "running":
            return
        if status != "succeeded":
            why = (error or {}).get("message", status)
            await self._end(group, "failed", error={"code": "expert_failed", "message": (
                f"expert {child['member']} ({child['taxon']}) {status}: {why}; the other experts keep their results")})
            return
        if all(c["status"] == "succeeded" for c in group.children):
            try:
                landed = await self._register(group)
            except Exception as exc:  # a bad member fails the group, never the gateway
                log.exception("experts job %s: registering the group failed", group.id)
                await self._end(group, "failed", error={"code": "bad_export", "message": str(exc)})
                return
            await self._end(group, "succeeded", result=landed)

    async def _end(self, group: Group, status: str, *, result: dict[str, Any] | None = None,
                   error: dict[str, Any] | None = None) -> None:
        from .jobs import Job

        group.status = status
        self._save(group)
        shell = Job(id=group.id, tenant=group.tenant, spec=group.spec, spec_json=b"")
        shell.step = sum(self._child_step(c) for c in group.children)
        await self.board._finish(shell, status, result=result, error=error)
        self.groups.pop(group.id, None)

    async def cancel(self, group_id: str, tenant: str) -> None:
        group = self.groups[group_id]
        group.status = "cancelled"
        for c in group.children:
            if c["job"] in self.board.jobs:
                await self.board.cancel(c["job"], tenant)
        await self._end(group, "cancelled")

    # ---- the group as a function ----------------------------------------------------------------
    async def _register(self, group: Group) -> dict[str, Any]:
        from .auto_routes import _embedder
        from .trained import _evaluate_when_served, _state

        spec, hp = group.spec, group.hparams
        assert spec.base is not None
        base = self.hive.resolve(spec.base).manifest
        embed = self.hive.catalog[_embedder(self.hive)].manifest
        folder = _state(self.hive) / "trained" / f"{spec.output_name}-{spec.output_version}"
        folder.mkdir(parents=True, exist_ok=True)
        task = GROUP_TASK[hp.expert_method]
        members, evals, examples = [], [], []
        options: dict[str, Any] = {k: v for k, v in base.options.items() if k == "context_tokens"}
        for c in group.children:
            entry = self.hive.catalog[c["result"]["version"]]
            m = entry.manifest
            if task == "classifier-experts":  # every head reads the one encoder, cut as it was trained
                options = {k: v for k, v in m.options.items() if k in ("encoder_package", "max_tokens")}
            members.append({"name": c["member"].split("@")[0], "taxon": c["taxon"], "adapter": ".",
                            "artifact": m.source.artifact, "centroid": c["centroid"], "size": c["size"],
                            "job": c["job"], "score": c["result"].get("score")})
            if m.eval is not None and m.eval_path().is_file():
                evals.extend(line for line in m.eval_path().read_text().splitlines() if line.strip())
            examples.extend(example_prompts(m.eval_path() if m.eval else None, 2))
        if not evals:
            raise ValueError("no expert left held-out rows to evaluate the group on")
        (folder / "eval.jsonl").write_text("\n".join(evals) + "\n")
        source = source_doc(base.source, base)
        doc: dict[str, Any] = {
            "name": spec.output_name, "version": spec.output_version, "task": task,
            "description": (f"{len(members)} {hp.expert_method} experts on {base.ref}, "
                            f"one per {group.strategy} partition "
                            f"({', '.join(m['taxon'] for m in members)}), trained by job {group.id}."),
            "lifecycle": "candidate", "domains": base.domains, "languages": base.languages,
            "examples": examples[:16],
            "source": source,
            "hardware": {"device_kinds": list(base.hardware.device_kinds), "dtypes": list(base.hardware.dtypes),
                         "min_memory_mb": base.hardware.min_memory_mb + (
                             hp.adapter_memory_mb + 300 if task == "experts" else 64)},
            "batching": {"max_batch": base.batching.max_batch, "max_wait_ms": base.batching.max_wait_ms},
            "options": options,
            "eval": {"dataset": "eval.jsonl", "metric": spec.eval.metric, "threshold": spec.eval.threshold,
                     "field": get_method("experts").eval_field(spec.eval.metric)},
            "experts": {"k": hp.route.k, "temperature": hp.route.temperature,
                        "adapter_memory_mb": hp.adapter_memory_mb, "strategy": group.strategy,
                        "embed": source_doc(embed.source, embed), "members": members},
        }
        (folder / "manifest.toml").write_text(dumps(doc))
        digest, files = await asyncio.to_thread(artifact_digest, folder)
        provenance = {"artifact": {"sha256": digest, "files": files}, "job": group.id, "output": spec.output,
                      "method": "experts", "strategy": group.strategy, "note": group.note, "base": spec.base,
                      "embedder": embed.ref, "dataset_sha256": spec.dataset.id,
                      "children": [{k: c[k] for k in ("job", "member", "taxon", "size", "steps")} for c in group.children],
                      "spec": msgspec.to_builtins(spec), "landed_at": time.time()}
        (folder / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str) + "\n")
        entry = await self.hive.add_version(folder / "manifest.toml")
        asyncio.create_task(_evaluate_when_served(self.hive, entry.ref), name=f"evaluate {entry.ref}")
        return {"version": entry.ref, "lifecycle": "candidate",
                "members": [f"{m['name']}@{spec.output_version}" for m in members]}

    # ---- reading and persistence ------------------------------------------------------------------
    def _child_step(self, c: dict[str, Any]) -> int:
        live = self.board.jobs.get(c["job"])
        return live.step if live is not None else int(c.get("step") or 0)

    def children_view(self, group_id: str, stored: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Each child's progress: live from the board while it trains, else as it ended."""
        group = self.groups.get(group_id)
        children = group.children if group is not None else (stored or [])
        out = []
        for c in children:
            live = self.board.jobs.get(c["job"])
            node = None
            if live is not None and live.node_id is not None:
                rec = self.hive.nodes.nodes.get(live.node_id)
                node = rec.name if rec is not None else None
            out.append({"job": c["job"], "member": c["member"], "taxon": c["taxon"], "size": c["size"],
                        "status": live.status if live is not None else c["status"], "node": node,
                        "step": self._child_step(c), "total_steps": c["steps"],
                        "result": c.get("result"), "error": c.get("error")})
        return out

    def stored_children(self, group_id: str) -> list[dict[str, Any]]:
        path = self.board._job_dir(group_id) / STATE_FILE
        if not path.is_file():
            return []
        return json.loads(path.read_text())["children"]

    def _save(self, group: Group) -> None:
        d = self.board._job_dir(group.id)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({"children": group.children, "strategy": group.strategy, "note": group.note,
                                   "status": group.status, "hparams": msgspec.to_builtins(group.hparams)}))
        tmp.replace(d / STATE_FILE)

    async def _parent_event(self, group: Group, kind: str, data: dict[str, Any]) -> None:
        from .jobs import Job

        await self.board._event(Job(id=group.id, tenant=group.tenant, spec=group.spec, spec_json=b""), kind, data)

    async def restore(self, row: dict[str, Any], spec: JobSpec, hparams: ExpertsHParams) -> None:
        """A parent that was running when the gateway stopped: its children are ordinary jobs
        (reloaded by the board); those that ended meanwhile are caught up on here."""
        path = self.board._job_dir(row["id"]) / STATE_FILE
        state = json.loads(path.read_text()) if path.is_file() else {"children": []}
        group = Group(id=row["id"], tenant=row["tenant"], spec=spec, hparams=hparams, children=state["children"],
                      strategy=state.get("strategy", ""), note=state.get("note", ""), started=row["created_at"])
        self.groups[group.id] = group
        self.board._seq[group.id] = (await self.hive.store.fetch("last_job_event_seq", {"job_id": group.id}))[0]["seq"]
        for c in group.children:
            self.parent_of[c["job"]] = group.id

    async def catch_up(self) -> None:
        """After a restart: children that ended while the gateway was down count now."""
        from .jobs import Job

        for group in list(self.groups.values()):
            for c in group.children:
                if c["status"] in ("succeeded", "failed", "cancelled") or c["job"] in self.board.jobs:
                    continue
                rows = await self.hive.store.fetch("get_job", {"id": c["job"]})
                if not rows or rows[0]["status"] in ("queued", "running"):
                    continue
                r = rows[0]
                shell = Job(id=c["job"], tenant=group.tenant, spec=group.spec, spec_json=b"", step=r["step"] or 0)
                await self.child_finished(shell, r["status"], json.loads(r["result"]) if r["result"] else None,
                                          json.loads(r["error"]) if r["error"] else None)
