"""The exception tree shared by gateway, node and SDK.

Every error the hive reports over HTTP is one of these; the gateway turns it into
``{"error": {"code", "message", "field"?}}`` with the class's status, and the SDK turns
that body back into the same class, so callers catch one type on both sides of the wire.

    HiveError (500, internal)
    ├── BadRequest (400, bad_request)
    │   ├── InvalidParameter (400, invalid_parameter)  a query/path parameter mistyped or out of range
    │   └── InvalidInput (422, invalid_input)        a field is missing, mistyped, empty or too long
    │       ├── InvalidSpec (422, invalid_training_spec)  a training job spec field is wrong
    │       └── TooManyParts (422, too_many_parts)      a /v1/auto request splits past limits.max_auto_parts
    ├── Unauthorized (401, unauthorized)
    ├── Forbidden (403, forbidden)
    ├── Conflict (409, conflict)                      the resource is not in a state that allows it
    │   ├── NotPromoted (409, not_promoted)           no ready/preferred version of that name
    │   ├── LifecycleConflict (409, lifecycle_conflict)
    │   ├── GateFailed (409, gate_failed)             evaluation below threshold; detail has the scores
    │   └── NoArtifact (409, no_artifact)             the version has no files to export (built in, an ensemble)
    ├── NotFound (404, not_found)
    │   ├── UnknownFunction (404, unknown_function)
    │   └── UnknownNode (404, unknown_node)           the node must register again
    ├── Retired (410, retired)                        a pinned version that was retired
    ├── PayloadTooLarge (413, payload_too_large)
    ├── UnsupportedMediaType (415, unsupported_media_type)
    ├── TooManyRequests (429, too_many_requests)
    ├── TaskFailed (502, task_failed)                 the model raised on a node
    │   └── EnsembleError (502, cannot_combine)       members' answers a rule cannot combine
    ├── TrainingError (training_failed)               a training job could not run (data, base model, state)
    │   └── CheckpointError (bad_checkpoint)          a checkpoint is missing, partial or for another job
    ├── NoCapacity (503, no_capacity)                 no live node serves the function
    ├── DeadlineExceeded (504, deadline_exceeded)
    │
    │   never on the wire (the CLI prints the first two as one sentence):
    ├── ConfigError (config_error)                    bad hive.toml / manifest / node settings
    │   └── DatasetError (dataset_error)              an evaluation dataset file is unreadable or malformed
    ├── ExportError (export_error)                    ``models export`` cannot make what was asked (bases, ranks, weights)
    ├── StoreError (store_error)                      the state database cannot be opened or migrated
    │   └── SchemaTooNew (schema_too_new)             written by a newer colabhive; names both versions
    │
    │   a node's own, raised and caught inside the node process:
    ├── GatewayUnreachable (gateway_unreachable)      also a ConnectionError: down, restarting, no route
    ├── GatewayError (gateway_error)                  the gateway answered 4xx/5xx (http_status, remote_code)
    ├── ConnectionClosed (connection_closed)          a kept-alive connection closed before any answer
    ├── StreamClosed (stream_closed)                  a streamed task's caller went away
    ├── Cancelled (cancelled)                         a node-side input cancelled before it finished
    ├── DatasetMismatch (dataset_mismatch)            fetched dataset bytes do not hash to its id
    └── NodeStopping (node_stopping)                  SIGTERM/SIGINT: unwind the poll loop and leave
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Cancelled",
    "CheckpointError",
    "ConfigError",
    "Conflict",
    "ConnectionClosed",
    "DatasetError",
    "DatasetMismatch",
    "DeadlineExceeded",
    "EnsembleError",
    "ExportError",
    "Forbidden",
    "GateFailed",
    "GatewayError",
    "GatewayUnreachable",
    "HiveError",
    "InvalidInput",
    "InvalidParameter",
    "InvalidSpec",
    "LifecycleConflict",
    "NoArtifact",
    "NoCapacity",
    "NodeStopping",
    "NotFound",
    "NotPromoted",
    "PayloadTooLarge",
    "Retired",
    "SchemaTooNew",
    "StoreError",
    "StreamClosed",
    "TaskFailed",
    "TooManyParts",
    "TooManyRequests",
    "TrainingError",
    "Unauthorized",
    "UnknownFunction",
    "UnknownNode",
    "UnsupportedMediaType",
    "error_for_code",
]


class HiveError(Exception):
    """Something went wrong inside the hive."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or self.code).strip().splitlines()[0]
        self.field = field
        self.retry_after = retry_after
        self.detail = detail
        """Machine-readable particulars (e.g. the evaluation that refused a promotion)."""
        super().__init__(self.message)

    def to_body(self) -> dict[str, dict[str, Any]]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        if self.detail is not None:
            err["detail"] = self.detail
        return {"error": err}


class BadRequest(HiveError):
    """The request could not be understood."""

    status = 400
    code = "bad_request"


class InvalidParameter(BadRequest):
    """A query or path parameter is mistyped or outside its allowed range."""

    status = 400
    code = "invalid_parameter"


class InvalidInput(BadRequest):
    """The input does not match the function's schema."""

    status = 422
    code = "invalid_input"


class Unauthorized(HiveError):
    """A valid credential is required."""

    status = 401
    code = "unauthorized"


class Forbidden(HiveError):
    """This credential may not do that."""

    status = 403
    code = "forbidden"


class Conflict(HiveError):
    """The resource is not in a state that allows this."""

    status = 409
    code = "conflict"


class NotPromoted(Conflict):
    """The function has no ready or preferred version; pin one with name@version."""

    code = "not_promoted"


class LifecycleConflict(Conflict):
    """That lifecycle change is not allowed from the version's current state."""

    code = "lifecycle_conflict"


class GateFailed(Conflict):
    """The version's evaluation did not reach its threshold, so it was not promoted."""

    code = "gate_failed"


class NoArtifact(Conflict):
    """The version has no files to export: its runner is built in, or it is an ensemble of others."""

    code = "no_artifact"


class NotFound(HiveError):
    """No such resource."""

    status = 404
    code = "not_found"


class Retired(HiveError):
    """That version is retired."""

    status = 410
    code = "retired"


class UnknownFunction(NotFound):
    """No function by that name is in the catalog."""

    code = "unknown_function"


class UnknownNode(NotFound):
    """The gateway does not know this node; register again."""

    code = "unknown_node"


class PayloadTooLarge(HiveError):
    """The request body is larger than the gateway accepts."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HiveError):
    """The body must be JSON."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(HiveError):
    """The function's queue is full; retry later."""

    status = 429
    code = "too_many_requests"


class TaskFailed(HiveError):
    """The model raised an error while running the task."""

    status = 502
    code = "task_failed"


class EnsembleError(TaskFailed):
    """The members' answers cannot be combined by this rule (e.g. a vote over numbers)."""

    code = "cannot_combine"


class NoCapacity(HiveError):
    """No live node can serve this function right now."""

    status = 503
    code = "no_capacity"


class DeadlineExceeded(HiveError):
    """The task did not finish before its deadline."""

    status = 504
    code = "deadline_exceeded"


class ConfigError(HiveError):
    """A configuration or manifest file is invalid."""

    code = "config_error"


class DatasetError(ConfigError):
    """An evaluation dataset file is unreadable or has a malformed line."""

    code = "dataset_error"


class ExportError(HiveError):
    """``colabhive models export`` cannot make what was asked: adapters of different bases,
    ranks ``linear`` cannot mix, weights that do not match the versions, a non-empty out dir."""

    code = "export_error"


class StoreError(HiveError):
    """The state database cannot be opened or brought up to date."""

    code = "store_error"


class SchemaTooNew(StoreError):
    """The state database was written by a newer colabhive than this one."""

    code = "schema_too_new"


# ---- a node's own: raised and caught inside the node process ---------------------------
class GatewayUnreachable(HiveError, ConnectionError):
    """The gateway could not be reached (down, restarting, or the network is out).

    Also a ConnectionError, so code that handles network failures generally catches it."""

    code = "gateway_unreachable"


class GatewayError(HiveError):
    """The gateway answered a node's request with an error.

    ``http_status``, ``remote_code`` and ``remote_message`` are the gateway's answer (e.g.
    404 ``unknown_node``); the class's own status and code stay those of this error, as for
    every class here, and it is built like every other (the SDK rebuilds errors by code)."""

    code = "gateway_error"
    http_status: int = 0
    remote_code: str = ""
    remote_message: str = ""

    @classmethod
    def of_reply(cls, http_status: int, remote_code: str, message: str) -> GatewayError:
        exc = cls(f"{http_status} {remote_code}: {message}")
        exc.http_status, exc.remote_code, exc.remote_message = http_status, remote_code, message
        return exc


class ConnectionClosed(HiveError):
    """The server closed a kept-alive connection before answering."""

    code = "connection_closed"


class StreamClosed(HiveError):
    """The caller of a streamed task went away; generation stops early."""

    code = "stream_closed"


class Cancelled(HiveError):
    """A submitted input was cancelled (its handle's ``cancel``) before it finished: the
    caller left, or its deadline passed. Raised inside a node only, never sent as is."""

    code = "cancelled"


class DatasetMismatch(HiveError):
    """The bytes the gateway sent do not hash to the dataset's id."""

    code = "dataset_mismatch"


class InvalidSpec(InvalidInput):
    """The training job spec is invalid."""

    code = "invalid_training_spec"


class TooManyParts(InvalidInput):
    """The /v1/auto request splits into more parts than one request may fan out into."""

    code = "too_many_parts"

    @classmethod
    def of(cls, found: int, limit: int) -> TooManyParts:  # HiveError's constructor: the SDK rebuilds it
        return cls(f"the request splits into {found} parts; one /v1/auto request may have at most {limit} "
                   "(limits.max_auto_parts): send the rest in another request",
                   field="input", detail={"parts": found, "limit": limit})


class TrainingError(HiveError):
    """The training job could not run."""

    code = "training_failed"


class CheckpointError(TrainingError):
    """The checkpoint cannot be resumed from."""

    code = "bad_checkpoint"


class NodeStopping(HiveError):
    """The node was told to stop (SIGTERM/SIGINT): unwind the poll loop, then leave the hive."""

    code = "node_stopping"


def _all_subclasses(cls: type[HiveError]) -> list[type[HiveError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


_BY_CODE: dict[str, type[HiveError]] = {c.code: c for c in _all_subclasses(HiveError)}


def error_for_code(code: str) -> type[HiveError]:
    """Map a wire error code back to its class (HiveError for codes this version does not know)."""
    return _BY_CODE.get(code, HiveError)
