"""Client-facing catalog routes: every function, and one function's description.

Invoking a function is not here: the front door (front.py) serves ``POST /v1/fn/{name}``
through the one invoke flow (invoke.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from ..errors import Forbidden, UnknownFunction
from .call import entry_for, visible
from .hive import FunctionEntry, Hive
from .tenants import client_tenant

__all__ = ["describe_function", "list_functions"]


def _version_summary(hive: Hive, entry: FunctionEntry) -> dict[str, Any]:
    m, ref = entry.manifest, entry.ref
    live = hive.nodes.live()
    held = hive.member_refs(entry) if m.ensemble is not None else [ref]  # an ensemble runs where its members do
    out = {
        "version": m.version,
        "ref": ref,
        "lifecycle": hive.lifecycle.state(ref),
        "artifact": msgspec.to_builtins(entry.artifact),
        "evaluation": hive.evaluations.get(ref),
        "eval_spec": msgspec.to_builtins(m.eval) if m.eval else None,
        "nodes": [n.id for n in live if any(r in n.functions for r in held)],
        "loading_on": [n.id for n in live if any(r in n.loading for r in held)],
        "queue_depth": hive.dispatcher.depth(ref) if m.ensemble is None  # an ensemble's wait on the gateway
        else sum(fn == ref for fn, _ in hive.gateway_tasks.values()),
    }
    if m.ensemble is not None:
        out["ensemble"] = msgspec.to_builtins(m.ensemble) | {"running": held}
    return out


def _summary(hive: Hive, name: str, tenant: str) -> dict[str, Any] | None:
    """One function: what its default version is and does, plus every version's state."""
    refs = hive.lifecycle.names.get(name, [])
    entries = [hive.catalog[r] for r in refs if visible(hive.catalog[r], tenant, hive)]
    if not entries:
        return None
    default = hive.lifecycle.default_ref(name)
    head = hive.catalog[default] if default else entries[-1]
    m = head.manifest
    versions = [_version_summary(hive, e) for e in entries]
    nodes = sorted({n for v in versions if v["lifecycle"] != "retired" for n in v["nodes"]})
    out = {
        "name": name,
        "version": m.version,
        "default": default,
        "preferred": hive.lifecycle.preferred(name),
        "task": m.task,
        "description": m.description,
        "lifecycle": hive.lifecycle.state(head.ref),
        "domains": m.domains,
        "languages": m.languages,
        "examples": m.examples,
        "hardware": msgspec.to_builtins(m.hardware) if m.ensemble is None else None,  # its members' apply
        "batching": msgspec.to_builtins(m.batching),
        "ready": bool(default) and hive.serving(default),
        "nodes": nodes,
        "loading_on": sorted({n for v in versions for n in v["loading_on"]}),
        "queue_depth": sum(v["queue_depth"] for v in versions),
        "evaluation": hive.evaluations.get(head.ref),
        "versions": versions,
    }
    if m.ensemble is not None:
        out["ensemble"] = msgspec.to_builtins(m.ensemble)
    return out


@get("/v1/fn", summary="The function catalog: every function, its versions, states, scores and nodes",
     tags=["functions"])
async def list_functions(request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    out = [s for name in hive.lifecycle.names if (s := _summary(hive, name, tenant)) is not None]
    return {"functions": out}


@get(
    "/v1/fn/{name:str}",
    summary="One function (or name@version): manifest, versions, input and output JSON Schema",
    tags=["functions"],
)
async def describe_function(name: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    base = name.split("@", 1)[0]
    if "@" in name or hive.lifecycle.default_ref(name) is not None:
        entry = entry_for(hive, name, tenant)
    else:  # nothing promoted yet: describe its newest version rather than refuse
        refs = hive.lifecycle.names.get(name)
        if not refs:
            raise UnknownFunction(f"no function named {name!r}; GET /v1/fn lists the catalog")
        entry = hive.catalog[refs[-1]]
        if not visible(entry, tenant, hive):
            raise Forbidden(f"{name!r} is private to another tenant")
    out = _summary(hive, base, tenant) or {}
    if "@" in name:
        out.update(_version_summary(hive, entry))
        out["ready"] = hive.serving(entry.ref)
    out["manifest"] = msgspec.to_builtins(entry.manifest)
    out.update(hive.schemas(entry))
    return out
