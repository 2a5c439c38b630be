"""Drain: the gateway's supervisor calls this on SIGTERM, before stopping Granian.

Only the supervisor knows the secret (it passes it to the worker in the environment),
so the route is useless to anyone else; without a supervisor the route answers 404.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from litestar import Request, get, post

from ..errors import NotFound
from .hive import Hive

__all__ = ["drain", "drain_status"]

SECRET_ENV = "COLABHIVE_ADMIN_SECRET"


def _check(request: Request) -> Hive:
    secret = os.environ.get(SECRET_ENV, "")
    given = request.headers.get("x-hive-admin", "")
    if not secret or not hmac.compare_digest(secret, given):
        raise NotFound("no route '/v1/admin/drain'; see /docs for the API")
    return request.app.state.hive


def _status(hive: Hive) -> dict[str, Any]:
    return {
        "draining": hive.draining,
        "sync_in_flight": hive.sync_in_flight,
        "durable_pending": len(hive.dispatcher.durable),
    }


@post("/v1/admin/drain", include_in_schema=False, status_code=200)
async def drain(request: Request) -> dict[str, Any]:
    hive = _check(request)
    hive.draining = True
    hive.dispatcher.draining = True
    hive.dispatcher.wake_all()
    return _status(hive)


@get("/v1/admin/drain", include_in_schema=False)
async def drain_status(request: Request) -> dict[str, Any]:
    return _status(_check(request))
