"""The Python SDK against a real hive: outputs decoded, errors raised as the same classes.

Uses echo_hive (echo served, minilm-embed in the catalog with no node), which covers the
success path, every client-side error class and 503.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import colabhive
import pytest
from colabhive.errors import HiveError, InvalidInput, NoCapacity, Unauthorized, UnknownFunction
from conftest import HiveFactory
from hivectl import HiveProcess


def test_call_returns_decoded_output(echo_hive: HiveProcess) -> None:
    with colabhive.Client(echo_hive.url) as client:
        assert client.call("echo", text="hello SDK") == {"text": "hello SDK"}
        assert client.call("echo", text="with deadline", timeout_ms=20_000) == {"text": "with deadline"}


def test_unknown_function_raises_unknown_function(echo_hive: HiveProcess) -> None:
    with colabhive.Client(echo_hive.url) as client, pytest.raises(UnknownFunction) as info:
        client.call("nope", text="x")
    assert info.value.code == "unknown_function" and "nope" in info.value.message
    assert isinstance(info.value, HiveError)  # one base class catches everything


@pytest.mark.parametrize("inputs", [{"text": 5}, {"text": ""}, {}, {"text": "a" * 1001}])
def test_bad_input_raises_invalid_input_naming_field(echo_hive: HiveProcess, inputs: dict[str, object]) -> None:
    with colabhive.Client(echo_hive.url) as client, pytest.raises(InvalidInput) as info:
        client.call("echo", **inputs)
    assert info.value.field == "text"
    assert info.value.status == 422


def test_bad_timeout_raises_invalid_input_naming_header(echo_hive: HiveProcess) -> None:
    with colabhive.Client(echo_hive.url) as client, pytest.raises(InvalidInput) as info:
        client.call("echo", text="x", timeout_ms=0)
    assert info.value.field == "X-Timeout-Ms"


def test_no_node_raises_no_capacity_with_retry_after(echo_hive: HiveProcess) -> None:
    with colabhive.Client(echo_hive.url) as client, pytest.raises(NoCapacity) as info:
        client.call("minilm-embed", text="nobody hosts me")
    assert "minilm-embed" in info.value.message
    assert info.value.retry_after is not None and info.value.retry_after > 0


def test_functions_lists_catalog_with_readiness(echo_hive: HiveProcess) -> None:
    with colabhive.Client(echo_hive.url) as client:
        fns = {f["name"]: f for f in client.functions()}
        assert {"echo", "minilm-embed"} <= set(fns)
        assert fns["echo"]["ready"] is True
        assert fns["minilm-embed"]["ready"] is False  # in the catalog, no node hosts it
        assert client.describe("echo")["name"] == "echo"
        assert [n["name"] for n in client.nodes()] == ["node-echo"]
        with pytest.raises(UnknownFunction):
            client.describe("nope")


def test_async_client_inside_asyncio_run(echo_hive: HiveProcess) -> None:
    """Concurrent awaited calls, the catalog and errors, all from one event loop."""

    async def main() -> tuple[list[object], list[str]]:
        async with colabhive.AsyncClient(echo_hive.url) as client:
            outs = await asyncio.gather(*(client.call("echo", text=f"a{i}") for i in range(10)))
            names = [f["name"] for f in await client.functions()]
            with pytest.raises(NoCapacity):
                await client.call("minilm-embed", text="x")
            with pytest.raises(InvalidInput):
                await client.call("echo", text=7)
            return outs, names

    outs, names = asyncio.run(main())
    assert outs == [{"text": f"a{i}"} for i in range(10)]
    assert "echo" in names and "minilm-embed" in names


def test_sync_client_acall_works_across_event_loops(echo_hive: HiveProcess) -> None:
    """Client.acall from two successive asyncio.run() calls (two event loops) must both work."""
    with colabhive.Client(echo_hive.url) as client:
        assert asyncio.run(client.acall("echo", text="first loop")) == {"text": "first loop"}
        assert asyncio.run(client.acall("echo", text="second loop")) == {"text": "second loop"}


def test_api_key_is_sent_by_call_and_acall(make_hive: HiveFactory) -> None:
    """On a hive that requires API keys, Client(api_key=...) authenticates both call and acall."""
    h: HiveProcess = make_hive(auth={"api_keys": True})
    created = subprocess.run(
        [sys.executable, "-m", "colabhive", "keys", "create", "--config", str(h.config), "--tenant", "acme"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[0]
    h.admin_headers = {"Authorization": f"Bearer {key}"}  # /v1/nodes needs a key too
    h.start_gateway()
    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])

    with colabhive.Client(h.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.call("echo", text="who am I?")
    with colabhive.Client(h.url, api_key=key) as client:
        assert client.call("echo", text="keyed") == {"text": "keyed"}
        assert asyncio.run(client.acall("echo", text="keyed async")) == {"text": "keyed async"}
