"""hive.toml → HiveConfig.

Decoded in one call into Structs that forbid unknown fields, so a typo in a key is an
error naming that key instead of a setting silently ignored. The field descriptions are
the reference documentation for hive.toml (``colabhive config schema`` prints them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .errors import ConfigError

__all__ = [
    "AuthConfig",
    "GatewayConfig",
    "HiveConfig",
    "LimitsConfig",
    "NodeConfig",
    "TelemetryConfig",
    "load_config",
]

Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(gt=0)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class GatewayConfig(_Section):
    host: Annotated[str, Meta(description="Address the gateway binds.")] = "127.0.0.1"
    port: Annotated[Port, Meta(description="TCP port of the gateway (0 picks a free one).")] = 8700
    public_url: Annotated[
        str, Meta(description="URL nodes and clients use to reach the gateway; empty = http://host:port.")
    ] = ""
    docs: Annotated[bool, Meta(description="Serve the OpenAPI document and /docs pages.")] = True
    shutdown_grace_s: Annotated[
        float,
        Meta(ge=0, description="On SIGTERM: refuse new calls, let in-flight sync calls finish this long, then stop."),
    ] = 30.0


class NodeConfig(_Section):
    gateway: Annotated[str, Meta(description="Gateway URL a node pulls work from; empty = the gateway above.")] = ""
    name: Annotated[str, Meta(description="Human name of the node; empty = hostname.")] = ""
    site: Annotated[str, Meta(description="Site profile name (nodes/<site>.toml).")] = "local"
    functions: Annotated[
        list[str], Meta(description="Functions this node hosts; empty = every manifest its hardware fits.")
    ] = []
    max_items: Annotated[Positive, Meta(description="Most tasks the node takes per poll (its batch capacity).")] = 32
    poll_wait_ms: Annotated[Positive, Meta(description="How long one long-poll may wait for work.")] = 20_000
    heartbeat_s: Annotated[float, Meta(gt=0, description="Seconds between heartbeats.")] = 2.0
    join_token: Annotated[
        str, Meta(description="Token presented at registration; the COLABHIVE_JOIN_TOKEN variable overrides.")
    ] = ""
    torch_threads: Annotated[
        int, Meta(ge=0, description="torch intra-op threads per node process; 0 = torch's default.")
    ] = 1
    local: Annotated[bool, Meta(description="`colabhive up` starts one node on this machine.")] = True
    dtypes: Annotated[
        list[Literal["fp32", "fp16", "bf16", "int8"]],
        Meta(description="Dtypes every device of this node offers, replacing what its plugins report "
             "(empty = as reported). [\"fp32\"] keeps every model in full precision; a dtype the "
             "hardware only emulates (bf16 on a CPU without AVX-512 BF16 or AMX) is then offered "
             "anyway, slower than fp32: for trying a manifest's guard, not for speed."),
    ] = []


class TelemetryConfig(_Section):
    exporter: Annotated[
        Literal["none", "console", "otlp", "jsonl"],
        Meta(description="Where spans go: nowhere, stdout, an OTLP/HTTP collector, or a JSON-lines file."),
    ] = "none"
    path: Annotated[
        str, Meta(description="jsonl exporter: file path; each process appends to <stem>.<service>.jsonl")
    ] = "var/traces.jsonl"
    otlp_endpoint: Annotated[str, Meta(description="otlp exporter: collector URL.")] = (
        "http://127.0.0.1:4318/v1/traces"
    )
    service_name: Annotated[str, Meta(description="OpenTelemetry service.name prefix.")] = "colabhive"


class LimitsConfig(_Section):
    max_body_bytes: Annotated[Positive, Meta(description="Largest request body accepted (413 above).")] = 1_048_576
    max_text_chars: Annotated[Positive, Meta(description="Longest text field accepted (422 above).")] = 20_000
    max_auto_parts: Annotated[Positive, Meta(
        description="Most parts one /v1/auto request may fan out into (422 above, saying how many were found).")] = 16
    max_dataset_bytes: Annotated[
        Positive,
        Meta(description="Largest dataset upload (POST /v1/datasets, streamed to disk; 413 above). "
             "Separate from max_body_bytes, which bounds the JSON bodies held in memory."),
    ] = 268_435_456
    default_timeout_ms: Annotated[Positive, Meta(description="Deadline of a sync call without X-Timeout-Ms.")] = (
        30_000
    )
    max_timeout_ms: Annotated[Positive, Meta(description="Largest X-Timeout-Ms a caller may ask for.")] = 300_000
    queue_size: Annotated[Positive, Meta(description="Most queued tasks per function (429 above).")] = 10_000
    node_timeout_s: Annotated[
        float, Meta(gt=0, description="A node silent this long is gone; its tasks are requeued.")
    ] = 6.0
    lease_s: Annotated[float, Meta(gt=0, description="How long a node holds a task before it is requeued.")] = 60.0
    max_attempts: Annotated[Positive, Meta(description="Times a task is handed out before it fails.")] = 3
    job_lease_s: Annotated[float, Meta(
        gt=0, description="A training job whose node posts nothing for this long goes back to the queue and "
        "resumes elsewhere from its last checkpoint. Long enough that a slow poll or a dropped connection "
        "does not restart a healthy job.")] = 30.0
    job_max_attempts: Annotated[Positive, Meta(description="Nodes a training job may be leased to before it "
                                                           "fails (each lost lease is one).")] = 5
    max_checkpoint_bytes: Annotated[Positive, Meta(
        description="Largest checkpoint or trained-version archive a node may upload.")] = 2 << 30
    result_ttl_s: Annotated[
        float, Meta(gt=0, description="How long finished async tasks and their results are kept.")
    ] = 86_400.0


class AuthConfig(_Section):
    join_tokens: Annotated[
        list[str],
        Meta(description="Tokens nodes may join with (besides `colabhive token create`); empty and none "
             "created = any node may join (fine on loopback, not on the internet)."),
    ] = []
    api_keys: Annotated[
        bool, Meta(description="Require `Authorization: Bearer <key>` (colabhive keys create) on client routes.")
    ] = False
    operators: Annotated[
        list[str],
        Meta(description="Tenants whose API keys may evaluate, promote, roll back and retire versions "
             "(only checked when api_keys = true)."),
    ] = []


Preference = Literal["fast", "green", "cheap", "balanced"]


class CostWeights(_Section):
    """Weights of the three cost terms; each term is first divided by its mean over the
    candidate nodes, so the weights compare like with like."""

    latency: Annotated[float, Meta(ge=0, description="Expected latency: queue × service time + network RTT.")] = 1.0
    carbon: Annotated[float, Meta(ge=0, description="Expected gCO2: energy × the site's grid intensity.")] = 0.0
    price: Annotated[float, Meta(ge=0, description="Expected cost: service time × the site's price per hour.")] = 0.0


class RoutingConfig(_Section):
    default: Annotated[Preference, Meta(description="Preference of calls without X-Hive-Prefer.")] = "fast"
    fast: CostWeights = msgspec.field(default_factory=lambda: CostWeights(latency=1.0, carbon=0.0, price=0.0))
    green: CostWeights = msgspec.field(default_factory=lambda: CostWeights(latency=0.1, carbon=1.0, price=0.0))
    cheap: CostWeights = msgspec.field(default_factory=lambda: CostWeights(latency=0.1, carbon=0.0, price=1.0))
    balanced: CostWeights = msgspec.field(default_factory=lambda: CostWeights(latency=1.0, carbon=1.0, price=1.0))


class HiveConfig(_Section):
    state_dir: Annotated[str, Meta(description="Directory for SQLite state and logs (relative to hive.toml).")] = (
        "var"
    )
    manifest_dirs: Annotated[list[str], Meta(description="Directories of function manifests.")] = msgspec.field(
        default_factory=lambda: ["manifests"]
    )
    site_dirs: Annotated[list[str], Meta(description="Directories of site profiles.")] = msgspec.field(
        default_factory=lambda: ["nodes"]
    )
    auto_router: Annotated[str, Meta(
        description="Directory of the /v1/auto router that `make models` builds (relative to hive.toml); "
        "missing: /auto routes by nearest manifest example and says so at start.")] = "models/auto-router"
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    node: NodeConfig = msgspec.field(default_factory=NodeConfig)
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    root: Annotated[str, Meta(description="Set at load: the directory relative paths resolve against.")] = "."

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def gateway_url(self) -> str:
        if self.gateway.public_url:
            return self.gateway.public_url.rstrip("/")
        host = "127.0.0.1" if self.gateway.host in ("0.0.0.0", "::", "") else self.gateway.host
        return f"http://{host}:{self.gateway.port}"

    @property
    def node_gateway_url(self) -> str:
        return (self.node.gateway or self.gateway_url).rstrip("/")


def load_config(path: str | os.PathLike[str] | None = None, **overrides: object) -> HiveConfig:
    """Read hive.toml (or defaults when ``path`` is None) and apply ``section.key`` overrides."""
    if path is None:
        cfg = HiveConfig(root=os.getcwd())
    else:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read ({exc.strerror})") from exc
        try:
            cfg = msgspec.toml.decode(raw, type=HiveConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{p}: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
        cfg = msgspec.structs.replace(cfg, root=str(p.resolve().parent))
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        sub = getattr(cfg, section)
        cfg = msgspec.structs.replace(cfg, **{section: msgspec.structs.replace(sub, **{key: value})})
    return cfg


def config_to_json(cfg: HiveConfig) -> bytes:
    return msgspec.json.encode(cfg)


def config_from_json(data: bytes | str) -> HiveConfig:
    return msgspec.json.decode(data, type=HiveConfig)
