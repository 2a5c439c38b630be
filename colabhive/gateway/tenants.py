"""Who is calling: the tenant behind a client's API key."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Request

from ..auth import bearer
from ..errors import Unauthorized
from .hive import Hive

__all__ = ["client_tenant", "tenant_of"]


async def client_tenant(hive: Hive, request: Request) -> str:
    """The caller's tenant ("" when the hive does not require keys); 401 on a missing or bad key."""
    tenant = await tenant_of(hive, request.headers)
    if tenant:
        request.state.tenant = tenant
    return tenant


async def tenant_of(hive: Hive, headers: Mapping[str, str]) -> str:
    """:func:`client_tenant` for callers holding only the headers (the ASGI fast path)."""
    if not hive.auth.require_keys:
        return ""
    key = bearer(headers.get("authorization"))
    if key is None:
        raise Unauthorized("this hive requires an API key: send `Authorization: Bearer <key>`")
    tenant = await hive.auth.tenant_for_key(key)
    if tenant is None:
        raise Unauthorized("unknown or revoked API key")
    return tenant
