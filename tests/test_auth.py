"""Credentials: tenant API keys on client routes (with a private function), join tokens for
nodes (from hive.toml and from `colabhive token create`), per-session node secrets on
node routes, and no secret ever written to a log or a span.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fakenode import FakeNode, wait_task
from hivectl import MANIFESTS, HiveProcess

JOIN_TOKEN = "tok-1"
SECRET_FN = "secret-echo"
PRIVATE_MANIFEST = f"""\
name = "{SECRET_FN}"
version = "1.0.0"
task = "echo"
description = "echo, for tenant acme only"
visibility = "private"
tenant = "acme"

[hardware]
device_kinds = ["cpu"]
dtypes = ["fp32"]
"""
SECRET_RE = re.compile(r"ch[kjn]_[A-Za-z0-9_-]{20,}")


def cli(h: HiveProcess, *args: str) -> str:
    """Run `python -m colabhive <args> --config <hive.toml>`; its first stdout line."""
    p = subprocess.run(
        [sys.executable, "-m", "colabhive", *args, "--config", str(h.config)],
        cwd=h.tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    line = p.stdout.splitlines()[0].strip()
    assert line and line not in p.stderr
    return line


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}".strip()}  # "" gives a bare "Bearer"


@dataclass
class Secured:
    hive: HiveProcess
    acme: str
    other: str
    cli_token: str


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("auth")
    mdir = tmp / "manifests"
    mdir.mkdir()
    shutil.copy(MANIFESTS / "echo.toml", mdir / "echo.toml")
    (mdir / "secret-echo.toml").write_text(PRIVATE_MANIFEST)
    h = HiveProcess(
        tmp,
        manifest_dirs=[mdir],
        auth={"api_keys": True, "join_tokens": [JOIN_TOKEN]},
        limits={"node_timeout_s": 10.0},
        node={"torch_threads": 0},
    )
    try:
        acme = cli(h, "keys", "create", "--tenant", "acme")  # before the gateway runs
        h.admin_headers = bearer(acme)  # /v1/nodes needs a key too when keys are on
        h.start_gateway()
        other = cli(h, "keys", "create", "--tenant", "other")  # while it runs
        cli_token = cli(h, "token", "create", "--note", "test")
        assert len({acme, other, cli_token}) == 3
        yield Secured(h, acme, other, cli_token)
    finally:
        h.stop()


def start_node_with_token(h: HiveProcess, monkeypatch: pytest.MonkeyPatch, name: str, token: str | None) -> None:
    """Start a node whose environment has COLABHIVE_JOIN_TOKEN=token (or none at all)."""
    with monkeypatch.context() as m:
        if token is None:
            m.delenv("COLABHIVE_JOIN_TOKEN", raising=False)
        else:
            m.setenv("COLABHIVE_JOIN_TOKEN", token)
        h.start_node(name, "--functions", f"echo,{SECRET_FN}")


@pytest.fixture(scope="module")
def joined(secured: Secured) -> Secured:
    """`secured` with a node that joined with the hive.toml token serving both functions."""
    h = secured.hive
    if "node-tok" not in h.nodes:
        mp = pytest.MonkeyPatch()
        try:
            start_node_with_token(h, mp, "node-tok", JOIN_TOKEN)
        finally:
            mp.undo()
        h.wait_ready(["echo", SECRET_FN], node="node-tok", timeout=60)
    return secured


# ---- client API keys -------------------------------------------------------------------------
def test_client_routes_need_a_key(joined: Secured) -> None:
    http = joined.hive.http
    for headers in ({}, bearer("chk_not-a-real-key"), {"Authorization": "Basic Zm9vOmJhcg=="}, bearer("")):
        for r in (
            http.post("/v1/fn/echo", json={"text": "x"}, headers=headers),
            http.post("/v1/fn/echo", json={"text": "x"}, headers={**headers, "Prefer": "respond-async"}),
            http.get("/v1/fn", headers=headers),
            http.get("/v1/fn/echo", headers=headers),
            http.get("/v1/tasks", headers=headers),
            http.get("/v1/nodes", headers=headers),
            http.get(f"/v1/tasks/{uuid.uuid4().hex}", headers=headers),
        ):
            assert r.status_code == 401, (headers, r.request.method, r.request.url, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
    # ops routes stay open
    assert http.get("/healthz").status_code == 200


def test_private_function_is_for_its_tenant_only(joined: Secured) -> None:
    http = joined.hive.http
    acme, other = bearer(joined.acme), bearer(joined.other)

    r = http.post(f"/v1/fn/{SECRET_FN}", json={"text": "classified"}, headers=other)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert http.get(f"/v1/fn/{SECRET_FN}", headers=other).status_code == 403
    r = http.post(f"/v1/fn/{SECRET_FN}", json={"text": "x"}, headers={**other, "Prefer": "respond-async"})
    assert r.status_code == 403, r.text

    r = http.post(f"/v1/fn/{SECRET_FN}", json={"text": "classified"}, headers=acme, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "classified"}
    assert http.get(f"/v1/fn/{SECRET_FN}", headers=acme).status_code == 200

    names = lambda hdr: {f["name"] for f in http.get("/v1/fn", headers=hdr).json()["functions"]}  # noqa: E731
    assert names(acme) == {"echo", SECRET_FN}
    assert names(other) == {"echo"}

    # public functions work for everyone with a key
    for hdr in (acme, other):
        r = http.post("/v1/fn/echo", json={"text": "public"}, headers=hdr, timeout=30)
        assert r.status_code == 200 and r.json() == {"text": "public"}, r.text


def test_tasks_are_visible_to_their_tenant_only(joined: Secured) -> None:
    http = joined.hive.http
    acme, other = bearer(joined.acme), bearer(joined.other)
    r = http.post(f"/v1/fn/{SECRET_FN}", json={"text": "mine"}, headers={**acme, "Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    tid = r.json()["id"]
    done = wait_task(http, tid, headers=acme)
    assert done["result"] == {"text": "mine"}

    assert http.get(f"/v1/tasks/{tid}", headers=other).status_code == 404
    assert http.delete(f"/v1/tasks/{tid}", headers=other).status_code == 404
    assert http.get(f"/v1/tasks/{tid}").status_code == 401
    assert tid not in [t["id"] for t in http.get("/v1/tasks", headers=other).json()["tasks"]]
    assert tid in [t["id"] for t in http.get("/v1/tasks", headers=acme).json()["tasks"]]

    # idempotency keys are per tenant: the same key from two tenants names two tasks
    key = f"shared-{uuid.uuid4().hex}"
    hdr = {"Prefer": "respond-async", "Idempotency-Key": key}
    a = http.post("/v1/fn/echo", json={"text": "from acme"}, headers={**acme, **hdr})
    o = http.post("/v1/fn/echo", json={"text": "from other"}, headers={**other, **hdr})
    assert a.status_code == o.status_code == 202, (a.text, o.text)
    assert a.json()["id"] != o.json()["id"]
    assert "idempotent-replayed" not in o.headers
    assert wait_task(http, o.json()["id"], headers=other)["result"] == {"text": "from other"}
    assert wait_task(http, a.json()["id"], headers=acme)["result"] == {"text": "from acme"}


# ---- node join tokens ------------------------------------------------------------------------
def test_register_needs_a_join_token(secured: Secured) -> None:
    http = secured.hive.http
    body = {"name": "intruder", "devices": [{"kind": "cpu"}]}
    for headers in ({}, bearer("tok-2"), bearer(secured.acme), bearer("")):
        r = http.post("/v1/nodes/register", json=body, headers=headers)
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
    assert "intruder" not in secured.hive.node_names()
    for token in (JOIN_TOKEN, secured.cli_token):
        r = http.post("/v1/nodes/register", json=body, headers=bearer(token))
        assert r.status_code == 200, r.text
        reply = r.json()
        assert reply["node_secret"].startswith("chn_")
        gone = http.delete(f"/v1/nodes/{reply['node_id']}", headers=bearer(reply["node_secret"]))
        assert gone.status_code == 200, gone.text


def test_node_without_token_is_refused_and_keeps_trying(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = secured.hive
    start_node_with_token(h, monkeypatch, "node-notoken", None)
    log = h.logs / "node-notoken.log"
    h.wait_for(
        lambda: log.exists() and log.read_text(errors="replace").count("registration refused") >= 2,
        30,
        "the tokenless node to be refused twice",
    )
    assert h.nodes["node-notoken"].poll() is None, "the node should keep retrying, not exit"
    assert "node-notoken" not in h.node_names()
    assert "401" in log.read_text(errors="replace")
    h.kill("node-notoken")


def test_node_with_config_token_joins_and_serves(joined: Secured) -> None:
    h = joined.hive
    assert "node-tok" in h.node_names()
    r = h.http.post("/v1/fn/echo", json={"text": "via tok-1"}, headers=bearer(joined.acme), timeout=30)
    assert r.status_code == 200 and r.json() == {"text": "via tok-1"}, r.text
    node = next(n for n in h.get_json("/v1/nodes")["nodes"] if n["name"] == "node-tok")
    assert r.headers["x-hive-node"] == node["id"]


def test_node_with_cli_token_joins_and_serves(secured: Secured, monkeypatch: pytest.MonkeyPatch) -> None:
    h = secured.hive
    start_node_with_token(h, monkeypatch, "node-cli", secured.cli_token)
    h.wait_ready(["echo"], node="node-cli", timeout=60)
    node = next(n for n in h.get_json("/v1/nodes")["nodes"] if n["name"] == "node-cli")
    # make node-cli the only server: stop the others (if any) so the call must land on it
    for name in [n for n in h.nodes if n != "node-cli" and h.nodes[n].poll() is None]:
        h.kill(name, signal.SIGTERM)
    h.wait_for(lambda: h.node_names() == ["node-cli"], 30, "node-cli to be the only node")
    r = h.http.post("/v1/fn/echo", json={"text": "via cli token"}, headers=bearer(secured.acme), timeout=30)
    assert r.status_code == 200 and r.json() == {"text": "via cli token"}, r.text
    assert r.headers["x-hive-node"] == node["id"]


# ---- node secrets ----------------------------------------------------------------------------
def test_node_routes_need_this_nodes_secret(secured: Secured) -> None:
    h = secured.hive
    a = FakeNode(h.url, "fake-a", token=JOIN_TOKEN)
    b = FakeNode(h.url, "fake-b", token=secured.cli_token)
    wrong = ["chn_wrong", b.secret, JOIN_TOKEN, secured.cli_token, secured.acme, ""]
    for secret in wrong:
        for r in (
            a.poll_raw(wait_ms=0, secret=secret),
            a.post_results([{"id": uuid.uuid4().hex, "output": {"text": "x"}}], secret=secret),
            a.heartbeat(secret=secret),
            a.leave(secret=secret),
        ):
            assert r.status_code == 401, (secret[:6], r.request.url, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
    # a's own secret works, and a is still registered after all those attempts
    assert a.heartbeat().status_code == 200
    assert a.poll(wait_ms=0) == []
    # an id the gateway never issued is 404 (register again)
    r = httpx.post(f"{h.url}/v1/nodes/{uuid.uuid4().hex[:16]}/heartbeat", json={}, headers=bearer(a.secret))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_node"
    assert a.leave().status_code == 200
    assert b.leave().status_code == 200
    a.close()
    b.close()


# ---- secrets stay secret ---------------------------------------------------------------------
def test_secrets_never_reach_logs_or_traces(joined: Secured) -> None:
    h = joined.hive
    fake = FakeNode(h.url, "fake-secret", token=JOIN_TOKEN)
    # traffic that carries every kind of secret: keys, both tokens, a node secret, bad ones too
    marker = f"trace-marker-{uuid.uuid4().hex[:8]}"
    r = h.http.post("/v1/fn/echo", json={"text": marker}, headers=bearer(joined.acme), timeout=30)
    assert r.status_code == 200, r.text
    h.http.post("/v1/fn/secret-echo", json={"text": "x"}, headers=bearer(joined.other))
    h.http.post("/v1/fn/echo", json={"text": "x"}, headers=bearer("chk_" + "w" * 43))
    h.http.post("/v1/nodes/register", json={"name": "x"}, headers=bearer("chj_" + "w" * 43))
    fake.heartbeat()
    fake.heartbeat(secret=joined.acme)
    fake.leave()

    # wait until the gateway's spans for this traffic are on disk (jsonl exporter, ~200 ms batches)
    def flushed() -> bool:
        return any(s.get("service", "").endswith("gateway") and s["name"].startswith("invoke") for s in h.spans())

    h.wait_for(flushed, 15, "gateway spans to be flushed")
    texts = {p.name: p.read_text(errors="replace") for p in h.logs.glob("*.log")}
    texts.update({p.name: p.read_text(errors="replace") for p in h.tmp.glob("traces.*.jsonl")})
    assert any(name.startswith("traces.") for name in texts), "no span file to check"
    secrets = {
        "acme key": joined.acme,
        "other key": joined.other,
        "cli join token": joined.cli_token,
        "config join token": JOIN_TOKEN,
        "node secret": fake.secret,
    }
    for where, text in texts.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {where}"
        found = SECRET_RE.findall(text)
        assert not found, f"secret-shaped strings in {where}: {found[:3]}"
    fake.close()


def test_key_created_while_running_is_accepted_without_restart(secured: Secured) -> None:
    h = secured.hive
    key = cli(h, "keys", "create", "--tenant", "acme")
    r = h.http.get("/v1/fn", headers=bearer(key))
    assert r.status_code == 200, r.text
    assert SECRET_FN in {f["name"] for f in r.json()["functions"]}
