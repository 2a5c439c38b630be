"""Run one batch: decode each input, run the model once per function, encode outputs.

Expected failures (an input the runner rejects) become error results for the tasks
concerned; an unexpected exception from the model is logged with the task ids and
returned as an error for that function's batch. The loop never dies on a task.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.trace import Link

from ..errors import InvalidInput, StreamClosed
from ..telemetry import context_from_traceparent
from ..wire import ErrorBody, TaskAssignment, TaskResult
from .cache import ModelCache
from .energy import EnergyMeter

__all__ = ["run_batch"]

log = logging.getLogger("colabhive.node")
_encode = msgspec.json.encode


ChunkSink = Callable[[str, int, str], bool]
"""post_chunk(task_id, seq, text) -> whether the caller is still listening."""


def run_batch(
    tasks: list[TaskAssignment],
    cache: ModelCache,
    tracer: trace.Tracer,
    node_name: str,
    post_chunk: ChunkSink | None = None,
    meter: EnergyMeter | None = None,
) -> list[TaskResult]:
    """Each function's tasks run as one batch; ``meter`` (when given) costs each batch's
    device energy and splits it evenly over the batch's tasks (they shared one forward)."""
    by_fn: dict[str, list[TaskAssignment]] = defaultdict(list)
    results: list[TaskResult] = []
    for t in tasks:
        if t.stream and post_chunk is not None:
            results.append(_run_streamed(t, cache, tracer, node_name, post_chunk, meter))
        else:
            by_fn[t.fn].append(t)
    for fn, group in by_fn.items():
        results.extend(_run_group(fn, group, cache, tracer, node_name, meter))
    return results


def _energy(result: TaskResult, energy: tuple[float | None, bool], share: int) -> TaskResult:
    joules, estimated = energy
    if joules is not None:
        result.energy_j = float(f"{joules / share:.6g}")  # 6 significant digits: µJ tasks stay > 0
        result.energy_estimated = estimated
    return result


def _run_streamed(
    t: TaskAssignment,
    cache: ModelCache,
    tracer: trace.Tracer,
    node_name: str,
    post_chunk: ChunkSink,
    meter: EnergyMeter | None,
) -> TaskResult:
    """One streamed task on its own: each piece of text is posted as the runner emits it."""
    loaded = cache.loaded.get(t.fn)
    if loaded is None or not loaded.runner.streams:
        return _run_group(t.fn, [t], cache, tracer, node_name, meter)[0]
    try:
        inp = msgspec.json.decode(t.input, type=loaded.input_type)
        loaded.runner.check(inp)
    except (msgspec.MsgspecError, InvalidInput) as exc:
        return TaskResult(id=t.id, error=ErrorBody(code="invalid_input", message=str(exc),
                                                   field=getattr(exc, "field", None)))
    seq = 0

    def emit(text: str) -> None:
        nonlocal seq
        if text and not post_chunk(t.id, seq, text):
            raise StreamClosed
        seq += 1

    with tracer.start_as_current_span(f"node.execute {t.fn}", context=context_from_traceparent(t.traceparent)) as s:
        s.set_attribute("hive.fn", t.fn)
        s.set_attribute("hive.node", node_name)
        s.set_attribute("hive.stream", True)
        reading = meter.begin(loaded.runner.device, t.fn) if meter is not None else None
        t0 = time.perf_counter()
        try:
            out = loaded.runner.stream(inp, emit)
        except StreamClosed:
            return _error(t, "cancelled", "the caller stopped listening; generation stopped early")
        except Exception as exc:
            log.exception("%s failed on streamed task %s", t.fn, t.id)
            return _error(t, "model_error", f"{type(exc).__name__}: {exc}")
        run_ms = (time.perf_counter() - t0) * 1000
        energy = meter.end(reading) if meter is not None and reading is not None else (None, False)
        s.set_attribute("hive.chunks", seq)
        if energy[0] is not None:
            s.set_attribute("hive.energy_j", energy[0])
            s.set_attribute("hive.energy_estimated", energy[1])
    result = TaskResult(id=t.id, output=msgspec.Raw(_encode(out)), run_ms=run_ms, batch_size=1,
                        dtype=loaded.runner.dtype)
    return _energy(result, energy, 1)


def _error(t: TaskAssignment, code: str, message: str) -> TaskResult:
    return TaskResult(id=t.id, error=ErrorBody(code=code, message=message))


def _run_group(
    fn: str,
    group: list[TaskAssignment],
    cache: ModelCache,
    tracer: trace.Tracer,
    node_name: str,
    meter: EnergyMeter | None = None,
) -> list[TaskResult]:
    loaded = cache.loaded.get(fn)
    if loaded is None:
        return [_error(t, "not_loaded", f"{fn} is not loaded on {node_name}") for t in group]
    results: list[TaskResult] = []
    ok: list[TaskAssignment] = []
    inputs: list[Any] = []
    for t in group:
        try:
            inp = msgspec.json.decode(t.input, type=loaded.input_type)
            loaded.runner.check(inp)
        except msgspec.MsgspecError as exc:
            results.append(_error(t, "invalid_input", str(exc)))
            continue
        except InvalidInput as exc:
            results.append(TaskResult(id=t.id, error=ErrorBody(code=exc.code, message=exc.message, field=exc.field)))
            continue
        inputs.append(inp)
        ok.append(t)
    if not ok:
        return results

    recording = isinstance(tracer, trace.NoOpTracer) is False
    spans = []
    if recording:
        for t in ok:
            s = tracer.start_span(f"node.execute {fn}", context=context_from_traceparent(t.traceparent))
            s.set_attribute("hive.fn", fn)
            s.set_attribute("hive.node", node_name)
            s.set_attribute("hive.batch_size", len(ok))
            spans.append(s)
        fwd = tracer.start_span(
            f"model.forward {fn}",
            context=trace.set_span_in_context(spans[0]),
            links=[Link(s.get_span_context()) for s in spans[1:]],
        )
        fwd.set_attribute("hive.batch_size", len(ok))
        fwd.set_attribute("hive.device", loaded.runner.device.id)
    reading = meter.begin(loaded.runner.device, fn) if meter is not None else None
    t0 = time.perf_counter()
    try:
        outputs = loaded.runner.run(inputs)
        if len(outputs) != len(ok):
            raise RuntimeError(f"runner returned {len(outputs)} outputs for {len(ok)} inputs")
        failure = None
    except Exception as exc:
        log.exception("%s failed on a batch of %d (tasks %s)", fn, len(ok), [t.id for t in ok])
        failure = f"{type(exc).__name__}: {exc}"
    run_ms = (time.perf_counter() - t0) * 1000
    energy = meter.end(reading) if meter is not None and reading is not None else (None, False)
    n = len(ok)
    if recording:
        if energy[0] is not None:
            fwd.set_attribute("hive.energy_j", energy[0])
        fwd.end()
        for s in spans:
            if failure:
                s.set_status(trace.StatusCode.ERROR, failure)
            if energy[0] is not None:
                s.set_attribute("hive.energy_j", energy[0] / n)
                s.set_attribute("hive.energy_estimated", energy[1])
            s.end()
    if failure is not None:
        results.extend(_error(t, "model_error", failure) for t in ok)
        return results
    for t, out in zip(ok, outputs):
        result = TaskResult(id=t.id, output=msgspec.Raw(_encode(out)), run_ms=run_ms, batch_size=n,
                            dtype=loaded.runner.dtype)
        results.append(_energy(result, energy, n))
    return results
