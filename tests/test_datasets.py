"""Datasets against a real gateway process: streamed uploads of JSONL, CSV and Parquet with
their inferred schemas, content addressing, malformed rows named by line and column, the
upload limit, a body cut off midway, delete (and 409 while a job uses it), tenant
isolation, the node download route and the node's cache, the CLI and the SDK.

No node process is needed: the node side is a FakeNode's real registration plus
:class:`colabhive.node.datasets.DatasetCache`, which is what a training node runs.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import colabhive
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from colabhive.datasets import inspect
from colabhive.errors import InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from colabhive.node.datasets import DatasetCache, DatasetMismatch
from fakenode import FakeNode
from hivectl import HiveProcess

MAX_DATASET = 300_000
MAX_BODY = 65_536  # the JSON routes' limit; uploads above it still pass (their own limit)
JSONL = "application/x-ndjson"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    h = HiveProcess(tmp_path_factory.mktemp("datasets"),
             limits={"max_dataset_bytes": MAX_DATASET, "max_body_bytes": MAX_BODY})
    try:
        h.start_gateway()
        yield h
    finally:
        h.stop()


def cli(h: HiveProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "colabhive", *args, "--config", str(h.config)],
                       cwd=h.tmp, capture_output=True, text=True, timeout=60)
    assert not check or p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, str, str]]:
    """A hive that requires API keys, with keys for tenants acme and other."""
    h = HiveProcess(tmp_path_factory.mktemp("datasets-keys"), auth={"api_keys": True})
    try:
        acme = cli(h, "keys", "create", "--tenant", "acme").stdout.split()[0]
        other = cli(h, "keys", "create", "--tenant", "other").stdout.split()[0]
        h.admin_headers = {"authorization": f"Bearer {acme}"}
        h.start_gateway()
        yield h, acme, other
    finally:
        h.stop()


def files(h: HiveProcess) -> list[str]:
    d = h.tmp / "var" / "datasets"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def push(h: HiveProcess, body: bytes, media: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    return h.http.post("/v1/datasets", content=body, params=params,
                       headers={"content-type": media, **(headers or {})})


def listed(h: HiveProcess, headers: dict[str, str] | None = None) -> set[str]:
    r = h.http.get("/v1/datasets", headers=headers, params={"limit": 500})
    assert r.status_code == 200, r.text
    return {d["id"] for d in r.json()["datasets"]}


def schema(body: dict) -> dict[str, tuple[str, bool]]:
    return {c["name"]: (c["type"], c["nullable"]) for c in body["schema"]}


def jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


# ---- good uploads ------------------------------------------------------------------------------
def test_jsonl_upload_infers_widest_types(hive: HiveProcess) -> None:
    body = (b'{"text": "good film", "label": 1, "score": 1, "ok": true}\n'
            b'\n'  # a blank line is no row
            b'{"text": "bad film", "label": "neg", "score": 0.25, "ok": false, "extra": null}\n'
            b'{"text": "meh", "label": 0, "score": 3, "ok": null}\n')
    r = push(hive, body, JSONL, name="reviews")
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["id"] == hashlib.sha256(body).hexdigest()
    assert r.headers["location"] == f"/v1/datasets/{d['id']}"
    assert (d["name"], d["format"], d["rows"], d["bytes"]) == ("reviews", "jsonl", 3, len(body))
    assert schema(d) == {
        "text": ("str", False), "label": ("str", False),  # 1, "neg", 0: mixed → the widest
        "score": ("float", False), "ok": ("bool", True), "extra": ("null", True),
    }
    shown = hive.http.get(r.headers["location"]).json()
    assert shown["sample"][0] == {"text": "good film", "label": 1, "score": 1, "ok": True}
    assert len(shown["sample"]) == 3 and shown["rows"] == 3
    assert f"{d['id']}.jsonl" in files(hive)


def test_csv_upload_types_cells_and_spans_quoted_newlines(hive: HiveProcess) -> None:
    body = (b"id,price,flag,note,code\r\n"
            b'1,9.5,true,"two\nlines",007\r\n'
            b"2,10,FALSE,,x1\r\n"
            b"3,1e3,false,plain,12\r\n")
    r = push(hive, body, "text/csv; charset=utf-8")
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["format"], d["rows"]) == ("csv", 3)
    assert schema(d) == {
        "id": ("int", False), "price": ("float", False), "flag": ("bool", False),
        "note": ("str", True), "code": ("str", False),  # 007 and 12 are ints, x1 is not: str
    }
    sample = hive.http.get(f"/v1/datasets/{d['id']}").json()["sample"]
    assert sample[0] == {"id": 1, "price": 9.5, "flag": True, "note": "two\nlines", "code": 7}
    assert sample[1]["note"] is None


def test_parquet_upload_reads_arrow_types_and_nulls(hive: HiveProcess, tmp_path: Path) -> None:
    table = pa.table({
        "x": pa.array([1, 2, None, 4], pa.int32()),
        "y": pa.array([0.5, 1.5, 2.5, 3.5], pa.float64()),
        "name": pa.array(["a", "b", "c", None]),
        "flag": pa.array([True, False, True, True]),
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2)  # two row groups: both are read
    r = push(hive, path.read_bytes(), PARQUET)
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["format"], d["rows"]) == ("parquet", 4)
    assert schema(d) == {"x": ("int", True), "y": ("float", False), "name": ("str", True), "flag": ("bool", False)}
    assert hive.http.get(f"/v1/datasets/{d['id']}").json()["sample"][2] == {"x": None, "y": 2.5, "name": "c",
                                                                             "flag": True}


def test_format_from_the_query_and_unknown_content_type_is_415(hive: HiveProcess) -> None:
    r = push(hive, b"a,b\n1,2\n", "application/octet-stream", format="csv")
    assert r.status_code == 201 and r.json()["format"] == "csv", r.text
    r = push(hive, b"a,b\n1,2\n", "application/octet-stream")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "?format=" in r.json()["error"]["message"]
    r = push(hive, b"a,b\n1,2\n", CSV, format="xlsx")
    err = r.json()["error"]
    assert r.status_code == 400 and err["code"] == "invalid_parameter" and err["field"] == "format", r.text
    assert "`format` must be one of jsonl, csv, parquet" in err["message"], err


def test_upload_above_the_json_body_limit_is_accepted(hive: HiveProcess) -> None:
    body = b"n,text\n" + b"".join(b"%d,row number %d\n" % (i, i) for i in range(8000))
    assert MAX_BODY < len(body) < MAX_DATASET
    r = push(hive, body, CSV)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 8000


def test_same_content_twice_is_the_same_dataset(hive: HiveProcess) -> None:
    body = jsonl([{"q": "same", "n": 1}, {"q": "bytes", "n": 2}])
    first = push(hive, body, JSONL, name="first")
    before = files(hive)
    again = push(hive, body, JSONL, name="second")
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert first.json()["id"] == again.json()["id"] == hashlib.sha256(body).hexdigest()
    assert again.json()["name"] == "first"  # nothing new was created
    assert files(hive) == before
    ids = [d["id"] for d in hive.http.get("/v1/datasets", params={"limit": 500}).json()["datasets"]]
    assert ids.count(first.json()["id"]) == 1


# ---- refused uploads ---------------------------------------------------------------------------
BAD = [
    ("jsonl", b'{"a": 1}\n{"a": 2}\n{"a": 3,}\n', 3, None, "is not valid JSON"),
    ("jsonl", b'{"a": 1, "label": "x"}\n\n{"a": 2, "label": ["y"]}\n', 3, "label", "holds a list"),
    ("jsonl", b'{"a": 1}\n[1, 2]\n', 2, None, "one JSON object"),
    ("jsonl", b'{"a": "ok"}\n{"a": "\xff"}\n', 2, None, "not valid UTF-8"),
    ("csv", b"text,label\nfine,1\nalso fine,0\nmissing\n", 4, "label", "is missing"),
    ("csv", b"text,label\nfine,1\none,two,three\n", 3, None, "has 3 values"),
    ("csv", b"text,label,text\n1,2,3\n", 1, "text", "appears twice"),
    ("csv", b"a,b\n1,2\n\xff\xfe,3\n", 3, None, "not valid UTF-8"),
]


@pytest.mark.parametrize(("fmt", "body", "line", "column", "says"), BAD)
def test_malformed_row_is_422_naming_line_and_column(
    hive: HiveProcess, fmt: str, body: bytes, line: int, column: str | None, says: str
) -> None:
    before, ids = files(hive), listed(hive)
    r = push(hive, body, JSONL if fmt == "jsonl" else CSV)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    prefix = f"line {line}: " + (f"column `{column}` " if column else "")
    assert err["message"].startswith(prefix) and says in err["message"], err["message"]
    assert err["field"] == (column or "$")
    assert err["detail"] == {"line": line, "column": column}
    assert files(hive) == before and listed(hive) == ids  # no file, no row


@pytest.mark.parametrize(("body", "says"), [
    (b"PAR1 this is not parquet", "not a Parquet file"),
    (b"", "empty"),
])
def test_broken_parquet_or_empty_body_is_refused(hive: HiveProcess, body: bytes, says: str) -> None:
    before = files(hive)
    r = push(hive, body, PARQUET)
    assert r.status_code in (400, 422) and says in r.json()["error"]["message"], r.text
    assert files(hive) == before


def test_parquet_with_an_unsupported_column_type_names_it(hive: HiveProcess, tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"ok": [1, 2], "tags": [[1], [2, 3]]}), path)
    r = push(hive, path.read_bytes(), PARQUET)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "tags" and err["message"].startswith("column `tags` has Parquet type list")


def test_too_large_is_413_and_leaves_nothing(hive: HiveProcess) -> None:
    before, ids = files(hive), listed(hive)
    body = b"n\n" + b"1\n" * (MAX_DATASET // 2)  # one row over: MAX_DATASET + 2 bytes
    r = push(hive, body, CSV)  # with Content-Length: refused before the body is read
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
    assert "max_dataset_bytes" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the limit is crossed
        for i in range(0, len(body), 16_384):
            yield body[i:i + 16_384]

    r = hive.http.post("/v1/datasets", content=chunks(), headers={"content-type": CSV})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
    assert files(hive) == before and listed(hive) == ids


def test_upload_cut_off_midway_leaves_no_file_and_no_row(hive: HiveProcess) -> None:
    before, ids = files(hive), listed(hive)
    head = (f"POST /v1/datasets?name=cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            f"Content-Length: 200000\r\n\r\n").encode()
    part_dir = hive.tmp / "var" / "datasets"
    with socket.create_connection(("127.0.0.1", hive.port)) as s:
        s.sendall(head + b"a,b\n" + b"1,2\n" * 10_000)  # 40 004 of the 200 000 bytes announced
        end = time.monotonic() + 10
        while not list(part_dir.glob("*.part")):  # the gateway is mid-upload, writing to disk
            assert time.monotonic() < end, "the gateway never started writing the upload"
            time.sleep(0.02)
    # the connection is closed: the partial file must go, and no row may appear
    hive.wait_for(lambda: not list(part_dir.glob("*.part")), 10, "the partial upload to be removed")
    assert files(hive) == before
    assert listed(hive) == ids
    assert hive.http.get("/healthz").status_code == 200


def test_pagination_by_cursor(hive: HiveProcess) -> None:
    made = [push(hive, jsonl([{"page": i}]), JSONL).json()["id"] for i in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        r = hive.http.get("/v1/datasets", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        page = r.json()
        assert len(page["datasets"]) <= 2 and "sample" not in (page["datasets"] or [{}])[0]
        seen += [d["id"] for d in page["datasets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == made[::-1]  # newest first
    assert len(seen) == len(set(seen)) == len(listed(hive))
    assert hive.http.get("/v1/datasets", params={"cursor": "nope"}).status_code == 422


# ---- delete ------------------------------------------------------------------------------------
def test_delete_refused_while_a_job_uses_it_then_deleted(hive: HiveProcess) -> None:
    d = push(hive, jsonl([{"train": "me"}]), JSONL).json()
    db = sqlite3.connect(hive.tmp / "var" / "hive.sqlite3")
    try:  # what a training job writes when it starts reading the dataset
        db.execute("INSERT INTO dataset_uses (dataset_id, job_id, tenant) VALUES (?, 'job-42', '')", (d["id"],))
        db.commit()
        r = hive.http.delete(f"/v1/datasets/{d['id']}")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict" and "job-42" in r.json()["error"]["message"]
        assert f"{d['id']}.jsonl" in files(hive) and d["id"] in listed(hive)
        db.execute("DELETE FROM dataset_uses WHERE job_id = 'job-42'")
        db.commit()
    finally:
        db.close()
    r = hive.http.delete(f"/v1/datasets/{d['id']}")
    assert r.status_code == 200 and r.json() == {"id": d["id"], "deleted": True}, r.text
    assert f"{d['id']}.jsonl" not in files(hive) and d["id"] not in listed(hive)
    for method in ("GET", "DELETE"):
        r = hive.http.request(method, f"/v1/datasets/{d['id']}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, r.text)
    assert hive.http.delete("/v1/datasets/not-a-sha").status_code == 404


# ---- tenants -----------------------------------------------------------------------------------
def test_tenants_see_only_their_own_datasets(keyed: tuple[HiveProcess, str, str]) -> None:
    h, acme, other = keyed
    a, o = {"authorization": f"Bearer {acme}"}, {"authorization": f"Bearer {other}"}
    body = jsonl([{"secret": "acme's"}])
    r = push(h, body, JSONL, a)
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    assert push(h, body, JSONL).status_code == 401  # no key
    assert h.http.get("/v1/datasets").status_code == 401
    assert did in listed(h, a) and did not in listed(h, o)
    for method in ("GET", "DELETE"):
        r = h.http.request(method, f"/v1/datasets/{did}", headers=o)
        assert r.status_code == 404, (method, r.text)
    # the other tenant uploads the same bytes: its own row over the same file
    r = push(h, body, JSONL, o, name="mine too")
    assert r.status_code == 201 and r.json()["id"] == did and r.json()["name"] == "mine too", r.text
    assert h.http.delete(f"/v1/datasets/{did}", headers=a).status_code == 200
    assert h.http.get(f"/v1/datasets/{did}", headers=a).status_code == 404
    assert h.http.get(f"/v1/datasets/{did}", headers=o).json()["rows"] == 1
    assert f"{did}.jsonl" in files(h)  # still other's
    assert h.http.delete(f"/v1/datasets/{did}", headers=o).status_code == 200
    assert f"{did}.jsonl" not in files(h)


# ---- nodes -------------------------------------------------------------------------------------
def test_node_download_needs_the_node_credential(hive: HiveProcess) -> None:
    body = jsonl([{"for": "node"}, {"for": "training"}])
    did = push(hive, body, JSONL).json()["id"]
    node = FakeNode(hive.url, "ds-node")
    try:
        url = f"/v1/nodes/{node.id}/datasets/{did}"
        assert hive.http.get(url).status_code == 401
        assert hive.http.get(url, headers={"authorization": "Bearer chn_wrong"}).status_code == 401
        assert hive.http.get(f"/v1/nodes/nobody/datasets/{did}", headers=node._auth()).status_code == 404
        r = hive.http.get(url, headers=node._auth())
        assert r.status_code == 200, r.text
        assert r.content == body and hashlib.sha256(r.content).hexdigest() == did
        assert r.headers["x-dataset-format"] == "jsonl"
        r = hive.http.get(f"/v1/nodes/{node.id}/datasets/{'ab' * 32}", headers=node._auth())
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    finally:
        node.close()


def test_node_cache_fetches_once_and_checks_the_hash(hive: HiveProcess, tmp_path: Path) -> None:
    body = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000))
    did = push(hive, body, CSV).json()["id"]
    node = FakeNode(hive.url, "cache-node")
    try:
        cache = DatasetCache(tmp_path / "cache", hive.url, node.id, node.secret)
        path = cache.fetch(did)
        assert path.name == f"{did}.csv" and path.read_bytes() == body and cache.downloads == 1
        assert inspect(path, "csv").rows == 2000
        assert cache.fetch(did) == path and cache.downloads == 1  # reused, not fetched again
        with pytest.raises(NotFound):
            cache.fetch("cd" * 32)
        # the gateway's copy rots on disk: a fresh cache refuses it and keeps nothing
        stored = hive.tmp / "var" / "datasets" / f"{did}.csv"
        stored.write_bytes(body.replace(b"1999,", b"1998,"))
        fresh = DatasetCache(tmp_path / "fresh", hive.url, node.id, node.secret)
        with pytest.raises(DatasetMismatch):
            fresh.fetch(did)
        assert list((tmp_path / "fresh").iterdir()) == [] and fresh.cached(did) is None
        stored.write_bytes(body)
        bad = DatasetCache(tmp_path / "bad", hive.url, node.id, "chn_wrong")
        with pytest.raises(Unauthorized):
            bad.fetch(did)
    finally:
        node.close()


# ---- CLI and SDK -------------------------------------------------------------------------------
def test_cli_push_list_show_rm(hive: HiveProcess, tmp_path: Path) -> None:
    f = tmp_path / "cli.csv"
    f.write_bytes(b"x,y\n" + b"".join(b"%d,%d\n" % (i, -i) for i in range(50_000)))  # ~600 KB: over the limit
    p = cli(hive, "datasets", "push", str(f), "--gateway", hive.url, check=False)
    assert p.returncode == 1 and "payload_too_large" in p.stderr, (p.stdout, p.stderr)
    f.write_bytes(b"x,y\n" + b"".join(b"%d,%d\n" % (i, -i) for i in range(10_000)))
    p = cli(hive, "datasets", "push", str(f), "--name", "from-cli", "--gateway", hive.url)
    d = json.loads(p.stdout)
    assert (d["name"], d["rows"], d["id"]) == ("from-cli", 10_000, hashlib.sha256(f.read_bytes()).hexdigest())
    assert "100%" in p.stderr and "cli.csv" in p.stderr  # the progress bar
    out = cli(hive, "datasets", "list", "--gateway", hive.url).stdout
    assert any(line.startswith(d["id"]) and "from-cli" in line for line in out.splitlines()), out
    shown = json.loads(cli(hive, "datasets", "show", d["id"], "--gateway", hive.url).stdout)
    assert shown["sample"][1] == {"x": 1, "y": -1}
    assert cli(hive, "datasets", "rm", d["id"], "--gateway", hive.url).stdout.strip() == f"deleted {d['id']}"
    p = cli(hive, "datasets", "show", d["id"], "--gateway", hive.url, check=False)
    assert p.returncode == 1 and "not_found" in p.stderr
    p = cli(hive, "datasets", "list", "--gateway", "http://127.0.0.1:1", check=False)
    assert p.returncode == 2 and "cannot reach" in p.stderr


def test_sdk_push_list_get_delete(hive: HiveProcess, tmp_path: Path) -> None:
    f = tmp_path / "sdk.jsonl"
    f.write_bytes(jsonl([{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(100)]))
    seen: list[tuple[int, int]] = []
    with colabhive.Client(hive.url) as client:
        d = client.datasets.push(f, progress=lambda sent, total: seen.append((sent, total)))
        assert d["name"] == "sdk.jsonl" and d["rows"] == 100
        assert seen[-1] == (f.stat().st_size, f.stat().st_size)
        assert d["id"] in {x["id"] for x in client.datasets.list()}
        got = client.datasets.get(d["id"])
        assert got["sample"][0] == {"prompt": "p0", "completion": "c0"}
        assert {c["name"]: c["type"] for c in got["schema"]} == {"prompt": "str", "completion": "str"}
        client.datasets.delete(d["id"])
        with pytest.raises(NotFound):
            client.datasets.get(d["id"])
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(b'{"a": 1}\n{"a": {"nested": 1}}\n')
        with pytest.raises(InvalidInput) as info:
            client.datasets.push(bad)
        assert info.value.field == "a" and info.value.message.startswith("line 2: column `a`")
        big = tmp_path / "big.csv"
        big.write_bytes(b"n\n" + b"7\n" * MAX_DATASET)
        with pytest.raises(PayloadTooLarge):
            client.datasets.push(big)
        txt = tmp_path / "notes.txt"
        txt.write_text("a,b\n1,2\n")
        with pytest.raises(InvalidInput) as info:  # the suffix says nothing: refused before sending
            client.datasets.push(txt)
        assert info.value.field == "format"
        assert client.datasets.push(txt, format="csv")["format"] == "csv"


# ---- the pure parts ----------------------------------------------------------------------------
def test_widening_ladder(tmp_path: Path) -> None:
    f = tmp_path / "w.jsonl"
    f.write_bytes(jsonl([{"b": True, "i": True, "f": 1, "s": 1.5, "n": None},
                         {"b": False, "i": 3, "f": 2.5, "s": "x", "n": None}]))
    cols = {c.name: c.type for c in inspect(f, "jsonl").columns}
    assert cols == {"b": "bool", "i": "int", "f": "float", "s": "str", "n": "null"}


def test_a_column_absent_from_some_rows_is_nullable(tmp_path: Path) -> None:
    f = tmp_path / "sparse.jsonl"
    f.write_bytes(jsonl([{"a": 1, "gone": "x"}, {"a": 2, "late": 0.5}, {"a": 3, "late": 1.5, "gone": "y"}]))
    cols = {c.name: (c.type, c.nullable) for c in inspect(f, "jsonl").columns}
    assert cols == {"a": ("int", False), "gone": ("str", True), "late": ("float", True)}
    g = tmp_path / "empty-col.csv"
    g.write_bytes(b"a,blank\n1,\n2,\n")
    cols = {c.name: (c.type, c.nullable) for c in inspect(g, "csv").columns}
    assert cols == {"a": ("int", False), "blank": ("null", True)}
