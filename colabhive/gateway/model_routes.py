"""Model registry routes: evaluate a version on the hive, promote it through its gate, roll back, retire,
and hand out a version's files for export.

Evaluations run through :func:`~.invoke.call_function`, the same path as any call, so a version is
judged by what the hive really serves: its queue, its node, its batching.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.response import Stream

from ..errors import DatasetError, Forbidden, GateFailed, InvalidInput, NoCapacity, UnknownFunction
from ..registry.evaluation import EvalReport, run_evaluation
from ..registry.files import HEADER_DIGEST, HEADER_SOURCE, HEADER_VERSION, files_of, tar_plan, tar_stream
from .call import visible
from .errors import decode_input
from .hive import FunctionEntry, Hive
from .invoke import call_function
from .tenants import client_tenant

__all__ = ["evaluate_version", "history", "promote_version", "retire_version", "rollback_function",
           "version_artifact"]

EVAL_TIMEOUT_MS = 120_000


class PromoteRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Literal["ready", "preferred"] = "preferred"


async def _operator(hive: Hive, request: Request) -> None:
    tenant = await client_tenant(hive, request)
    if hive.auth.require_keys and tenant not in hive.cfg.auth.operators:
        raise Forbidden(f"tenant {tenant!r} may not change the registry; list it in hive.toml auth.operators")


def _version(hive: Hive, ref: str) -> FunctionEntry:
    if "@" not in ref:
        raise InvalidInput(f"name a version as name@version, not {ref!r}", field="ref")
    entry = hive.catalog.get(ref)
    if entry is None:
        raise UnknownFunction(f"no version {ref!r}; GET /v1/fn lists the catalog")
    return entry


async def evaluate(hive: Hive, entry: FunctionEntry) -> EvalReport:
    """Run the version's declared evaluation on the hive and keep the report."""
    m, ref = entry.manifest, entry.ref
    if m.eval is None:
        raise InvalidInput(f"{ref} declares no [eval] in {m.file}; nothing to evaluate it with", field="eval")
    if not hive.serving(ref):
        raise NoCapacity(f"{ref} is not loaded on any node, so it cannot be evaluated; start a node that hosts it",
                         retry_after=5)
    headers = {"x-timeout-ms": str(min(EVAL_TIMEOUT_MS, hive.cfg.limits.max_timeout_ms))}

    async def run_one(body: bytes) -> bytes:
        return (await call_function(hive, ref, body, headers, tenant="")).body

    try:
        report = await run_evaluation(ref, m.eval, m.eval_path(), run_one)
    except DatasetError as exc:
        raise InvalidInput(str(exc), field="eval.dataset") from None
    row = msgspec.to_builtins(report)
    await hive.store.execute(
        "insert_evaluation",
        {"ref": ref, "metric": report.metric, "score": report.score, "threshold": report.threshold,
         "passed": int(report.passed), "dataset": report.dataset, "dataset_sha256": report.dataset_sha256,
         "artifact_sha256": entry.artifact.sha256, "report": msgspec.json.encode(report).decode(), "at": report.at},
    )
    hive.evaluations[ref] = row | {"artifact_sha256": entry.artifact.sha256}
    return report


@post("/v1/registry/{ref:str}/eval", tags=["registry"], status_code=200,
      summary="Run a version's declared evaluation on the hive; the report is kept and shown in /v1/fn")
async def evaluate_version(ref: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await _operator(hive, request)
    return msgspec.to_builtins(await evaluate(hive, _version(hive, ref)))


@post("/v1/registry/{ref:str}/promote", tags=["registry"], status_code=200,
      summary="Promote a version (candidate → ready → preferred) if it passes its evaluation; 409 with the scores if not")
async def promote_version(ref: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await _operator(hive, request)
    body = await request.body()
    req = decode_input(body, PromoteRequest, "promote") if body.strip() else PromoteRequest()
    entry = _version(hive, ref)
    hive.lifecycle.check_promotion(ref, req.to)  # refuse a backward move before spending an evaluation
    report = await evaluate(hive, entry)
    scores = msgspec.to_builtins(report)
    if not report.passed:
        cmp = "≤" if report.lower_is_better else "≥"
        raise GateFailed(
            f"{ref} scored {report.metric} = {report.score} on {report.n} examples; the gate needs {cmp} "
            f"{report.threshold}, so it stays {hive.lifecycle.state(ref)}",
            detail={"evaluation": scores},
        )
    changed = await hive.lifecycle.promote(ref, req.to, {"evaluation": scores})
    hive.sync_placement()
    return {"ref": ref, "lifecycle": req.to, "changed": changed, "evaluation": scores}


@post("/v1/registry/{name:str}/rollback", tags=["registry"], status_code=200,
      summary="Make the version the current preferred one replaced preferred again")
async def rollback_function(name: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await _operator(hive, request)
    if name not in hive.lifecycle.names:
        raise UnknownFunction(f"no function named {name!r}")
    changed = await hive.lifecycle.rollback(name)
    hive.sync_placement()
    return {"name": name, "preferred": hive.lifecycle.preferred(name), "changed": changed}


@post("/v1/registry/{ref:str}/retire", tags=["registry"], status_code=200,
      summary="Retire a version: pinned calls get 410, nodes stop loading it")
async def retire_version(ref: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await _operator(hive, request)
    _version(hive, ref)
    changed = await hive.lifecycle.retire(ref)
    hive.sync_placement()  # nodes unload it
    return {"ref": ref, "changed": changed}


@get("/v1/registry/{name:str}/history", tags=["registry"], summary="Every lifecycle change of a function")
async def history(name: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await client_tenant(hive, request)
    if name not in hive.lifecycle.names:
        raise UnknownFunction(f"no function named {name!r}")
    return {"name": name, "events": await hive.lifecycle.history(name), "at": time.time()}


@get("/v1/registry/{ref:str}/artifact", tags=["registry"],
     summary="A version's files as a tar (a trained one as landed, with provenance.json; one by path or "
             "package: its weights directory), for `colabhive models export`; 409 no_artifact if it has none")
async def version_artifact(ref: str, request: Request) -> Stream:
    """Whoever may call a version may take its files: the same visibility as ``GET /v1/fn``
    (a private version only for its tenant). A retired version is still served: exporting
    what was once preferred is how a rolled-back model is kept."""
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    entry = _version(hive, ref)
    if not visible(entry, tenant, hive):
        raise Forbidden(f"{ref!r} is private to another tenant")
    kind, root = await asyncio.to_thread(files_of, entry.manifest)  # a package may be found by importing it
    plan = await asyncio.to_thread(tar_plan, root)
    headers = {"content-length": str(plan.length), HEADER_VERSION: ref, HEADER_SOURCE: kind,
               HEADER_DIGEST: entry.artifact.sha256,
               "content-disposition": f'attachment; filename="{entry.manifest.name}-{entry.manifest.version}.tar"'}
    return Stream(tar_stream(plan), media_type="application/x-tar", headers=headers)

