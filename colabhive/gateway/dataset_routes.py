"""Dataset routes: upload (streamed to disk), list, show, delete; and the node's download.

The upload is the one client route whose body is not held in memory, so it has its own
limit (``limits.max_dataset_bytes``) instead of the app-wide ``max_body_bytes``: Litestar's
is switched off on this handler and :class:`DatasetStore` counts the bytes as they come.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.response import File

from ..datasets import DatasetStore
from ..datasets.formats import FORMATS, MEDIA_TYPES, Format, format_of_media_type
from ..errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from .hive import Hive
from .nodes import authenticate_node
from .tenants import client_tenant

__all__ = ["dataset_store", "delete_dataset", "get_dataset", "list_datasets", "node_dataset", "push_dataset"]

JSON = "application/json"
_MEDIA_OF: dict[str, str] = {}
for _media, _fmt in MEDIA_TYPES.items():
    _MEDIA_OF.setdefault(_fmt, _media)


def dataset_store(request: Request) -> DatasetStore:
    """The gateway's one DatasetStore (made with the hive; its constructor sweeps stale uploads)."""
    hive: Hive = request.app.state.hive
    return hive.datasets


def _format(query: str | None, content_type: str | None) -> Format:
    if query is not None:
        return query  # type: ignore[return-value]  # the route's pattern allows only FORMATS
    fmt = format_of_media_type(content_type)
    if fmt is None:
        raise UnsupportedMediaType(
            f"cannot tell the dataset's format from Content-Type {content_type or '(none)'!r}; send one of "
            f"{', '.join(MEDIA_TYPES)} or add ?format={'|'.join(FORMATS)}"
        )
    return fmt


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except HTTPException as exc:  # Litestar's "client disconnected prematurely"
        raise BadRequest(f"the upload was cut off ({exc.detail})") from None


@post("/v1/datasets", tags=["datasets"], status_code=201, request_max_body_size=None,
      summary="Upload a dataset (JSONL, CSV or Parquet body); its id is the sha256 of the bytes")
async def push_dataset(
    request: Request,
    name: str | None = Parameter(default=None, min_length=1, max_length=200),
    fmt: str | None = Parameter(query="format", default=None, pattern=f"^({'|'.join(FORMATS)})$"),
) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)  # credentials before a byte of the body is read
    dformat = _format(fmt, request.headers.get("content-type"))
    limit = hive.cfg.limits.max_dataset_bytes
    try:
        declared = request.content_length
    except HTTPException:
        raise InvalidInput("Content-Length is not a number", field="Content-Length") from None
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the dataset ({declared} bytes) is larger than this gateway accepts ({limit} bytes; "
                              "hive.toml limits.max_dataset_bytes)")
    ds, created = await dataset_store(request).ingest(
        _chunks(request), fmt=dformat, name=name, tenant=tenant, max_bytes=limit, declared_bytes=declared
    )
    return Response(
        content=msgspec.json.encode(ds), status_code=201 if created else 200, media_type=JSON,
        headers={"location": f"/v1/datasets/{ds.id}"},
    )


@get("/v1/datasets", tags=["datasets"], summary="Your datasets, newest first (cursor-paginated)")
async def list_datasets(
    request: Request,
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    after = None
    if cursor:
        created, _, did = cursor.partition(":")
        try:
            after = (float(created), did)
        except ValueError:
            raise InvalidInput("cursor is not one this gateway issued", field="cursor") from None
    found = await dataset_store(request).list(tenant, limit, after)
    next_cursor = f"{found[-1].created_at!r}:{found[-1].id}" if len(found) == limit else None
    body: dict[str, Any] = {"datasets": found, "next_cursor": next_cursor}
    return Response(content=msgspec.json.encode(body), media_type=JSON)


@get("/v1/datasets/{dataset_id:str}", tags=["datasets"], summary="A dataset: schema, row count, the first rows")
async def get_dataset(dataset_id: str, request: Request) -> Response:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    ds = await dataset_store(request).get(tenant, dataset_id)
    return Response(content=msgspec.json.encode(ds), media_type=JSON)


@delete("/v1/datasets/{dataset_id:str}", tags=["datasets"], status_code=200,
        summary="Delete a dataset (409 while a training job uses it)")
async def delete_dataset(dataset_id: str, request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    tenant = await client_tenant(hive, request)
    await dataset_store(request).delete(tenant, dataset_id)
    return {"id": dataset_id, "deleted": True}


@get("/v1/nodes/{node_id:str}/datasets/{dataset_id:str}", tags=["nodes"],
     summary="A node downloads a dataset's file by sha256 (to train on it)")
async def node_dataset(node_id: str, dataset_id: str, request: Request) -> File:
    hive: Hive = request.app.state.hive
    authenticate_node(hive, node_id, request.headers)
    path, fmt = await dataset_store(request).locate(dataset_id)
    return File(
        path=path, filename=path.name, media_type=_MEDIA_OF[fmt], content_disposition_type="attachment",
        headers={"x-dataset-format": fmt, "etag": f'"{dataset_id}"'},
    )
