"""The plan and its execution: parts → experts → nodes → results, merged in request order.

Each part becomes an ordinary call of its expert (``call_function``: the same validation,
queues, routing and traces as a direct call), so a part that fails fails alone: its slot
in the answer says what failed and why, and the other parts still answer. Independent
parts run concurrently. The whole request is one trace: the ``auto`` span is the parent
of every part's ``invoke`` span, on whichever nodes ran them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from ..errors import HiveError, TooManyParts
from ..families import all_families, family
from .experts import Choice, ExpertIndex
from .parse import Part
from .split import split_request

__all__ = ["PlannedPart", "plan_request", "run_parts"]

LONG_TEXT = 2_000
"""Requests longer than this are split in a worker thread, so other calls are not held up."""
Invoke = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[bytes, dict[str, str]]]]


class PlannedPart(msgspec.Struct, kw_only=True):
    index: int
    text: str
    shape: str
    task: str
    expert: str
    """name@version"""
    confidence: float
    fallback: bool
    why: str
    scores: dict[str, float]
    input: dict[str, Any]
    members: list[Any] | None = None
    """An ensemble's members: their names when planned, then what each answered (no outputs)."""
    member: dict[str, Any] | None = None
    """An expert group's member for this part: the nearest centroid when planned, then the one
    that answered (the heaviest, when k > 1 mixed several)."""
    node: str | None = None
    status: str = "planned"
    ms: float | None = None
    energy_j: float | None = None
    carbon_g: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None


async def plan_request(index: ExpertIndex, text: str | None, parts: list[Any] | None,
                       max_parts: int = 16) -> list[PlannedPart]:
    """Split (or take the caller's parts), recognise each part's shape, choose its expert.

    The part count is checked before any expert is chosen, so a request that fans out too
    far costs only its split."""
    if text is not None and len(text) > LONG_TEXT:  # up to ~0.5 s at max_text_chars: off the event loop
        raw = await asyncio.to_thread(split_request, text)
    else:
        raw = split_request(text) if text is not None else [_explicit(p) for p in parts or []]
    if len(raw) > max_parts:
        raise TooManyParts.of(len(raw), max_parts)
    choices: list[Choice] = await asyncio.gather(*(index.choose(p.kind, p.text, p.payload) for p in raw))
    raw, choices = await _undo_guesses(index, raw, choices)
    planned = []
    for i, (part, c) in enumerate(zip(raw, choices)):
        m = c.manifest
        if c.payload is not None:
            part.payload = c.payload
        body = family(m.task).auto_body(part, dict(m.options))  # the expert's own schema checks it
        planned.append(PlannedPart(index=i, text=part.text, shape=part.kind, task=m.task, expert=m.ref,
                                   confidence=c.confidence, fallback=c.fallback, why=c.why, scores=c.scores,
                                   input=body, members=list(m.ensemble.members) if m.ensemble else None,
                                   member=await _nearest_member(index, m, part.text) if m.experts else None))
    return planned


async def _nearest_member(index: ExpertIndex, m: Any, text: str) -> dict[str, Any] | None:
    """The member a group call would route ``text`` to (its node embeds the same way, with the
    same MiniLM): cosine to each centroid of the manifest's ``[experts]``."""
    (vec,) = await index.embed([text])
    best, best_cos = None, -2.0
    for e in m.experts.members:
        cos = sum(a * b for a, b in zip(vec, e.centroid))
        if cos > best_cos:
            best, best_cos = e, cos
    return None if best is None else {"name": best.name, "taxon": best.taxon, "cosine": round(best_cos, 4)}


async def _undo_guesses(index: ExpertIndex, raw: list[Part], choices: list[Choice]) -> tuple[list[Part], list[Choice]]:
    """Rejoin a part cut at "… and <verb> …" with the one before when both went to one expert
    or either was unsure: "detect the language and give me the ISO code" is one ask."""
    from .parse import classify_shape

    i = 1
    while i < len(raw):
        a, b = choices[i - 1], choices[i]
        if raw[i].joined == "and" and (a.manifest.name == b.manifest.name or a.fallback or b.fallback):
            joined = classify_shape(raw[i - 1].text + " and " + raw[i].text)
            joined.joined = raw[i - 1].joined
            raw[i - 1: i + 1] = [joined]
            choices[i - 1: i + 1] = [await index.choose(joined.kind, joined.text, joined.payload)]
            continue
        i += 1
    return raw, choices


def _explicit(p: Any) -> Part:
    """A caller-given part: text is parsed like free text; an object is the first family's
    (in hook order) that recognises its keys, else its text."""
    from .parse import classify_shape

    if isinstance(p, str):
        return classify_shape(p)
    for f in all_families():
        if f.auto_shape is not None and (part := f.from_object(p)) is not None:
            return part
    return classify_shape(str(p.get("text", p)))


async def run_parts(planned: list[PlannedPart], invoke: Invoke) -> AsyncIterator[PlannedPart]:
    """Run every part at once; yield each as it finishes (streaming), failures included."""

    async def one(p: PlannedPart) -> PlannedPart:
        t0 = time.perf_counter()
        try:
            out, headers = await invoke(p.expert, msgspec.json.encode(p.input), {})
            p.output, p.status = msgspec.json.decode(out), "ok"
            p.node = headers.get("x-hive-node")
            if isinstance(p.output, dict) and isinstance(ens := p.output.get("ensemble"), dict):
                p.members = [{k: v for k, v in row.items() if k != "output"} for row in ens["members"]]
            if isinstance(p.output, dict) and isinstance(used := p.output.get("experts"), list) and used:
                p.member = max(used, key=lambda u: u.get("weight", 0))
            if "x-hive-energy-j" in headers:
                p.energy_j = float(headers["x-hive-energy-j"])
            if "x-hive-carbon-g" in headers:
                p.carbon_g = float(headers["x-hive-carbon-g"])
        except HiveError as exc:
            p.status, p.error = "failed", exc.to_body()["error"]
        p.ms = round((time.perf_counter() - t0) * 1000, 2)
        return p

    for fut in asyncio.as_completed([one(p) for p in planned]):
        yield await fut
