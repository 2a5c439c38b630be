"""OpenTelemetry setup and W3C ``traceparent`` carrying.

One trace covers a request's whole path: the gateway's request span, the queue wait, the
node's execution and the model's forward pass. The gateway puts its span's
``traceparent`` on the task; the node continues the trace from it. With the exporter
``none`` no SDK is installed and every span is a no-op, so the hot path pays nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

from .config import HiveConfig

__all__ = ["JsonLinesExporter", "context_from_traceparent", "setup_tracing", "traceparent_of"]


def traceparent_of(span: Span) -> str:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_from_traceparent(value: str | None):  # -> opentelemetry.context.Context | None
    """Parse a W3C traceparent; None when absent or malformed (a bad header never fails a call)."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    sc = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0xFF))
    return trace.set_span_in_context(NonRecordingSpan(sc))


try:  # the SDK is a dependency, but keep import errors readable
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
except ImportError as exc:  # pragma: no cover
    raise ImportError("opentelemetry-sdk is required: make install") from exc


class JsonLinesExporter(SpanExporter):
    """One JSON object per finished span, appended to a file (tests and ad-hoc analysis read it)."""

    def __init__(self, path: Path, service: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", buffering=1, encoding="utf-8")
        self._service = service
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx = s.get_span_context()
            lines.append(
                json.dumps(
                    {
                        "service": self._service,
                        "name": s.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                        "start_ns": s.start_time,
                        "end_ns": s.end_time,
                        "attributes": dict(s.attributes or {}),
                        "links": [f"{lk.context.trace_id:032x}" for lk in s.links],
                        "status": s.status.status_code.name,
                    },
                    default=str,
                )
            )
        with self._lock:
            self._file.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def setup_tracing(cfg: HiveConfig, service: str) -> trace.Tracer:
    """Install the configured exporter for this process and return its tracer."""
    t = cfg.telemetry
    name = f"{t.service_name}-{service}"
    if t.exporter == "none":
        return trace.NoOpTracer()
    provider = TracerProvider(resource=Resource.create({"service.name": name, "process.pid": os.getpid()}))
    if t.exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(service_name=name)))
    elif t.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=t.otlp_endpoint)))
    else:
        base = cfg.resolve(t.path)
        path = base.with_name(f"{base.stem}.{service}{base.suffix or '.jsonl'}")
        provider.add_span_processor(
            BatchSpanProcessor(JsonLinesExporter(path, name), schedule_delay_millis=200)
        )
    atexit.register(provider.shutdown)
    return provider.get_tracer("colabhive")
