"""create_app: the Litestar application. Served by Granian (see cli.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from .. import __version__
from ..config import HiveConfig, config_from_json
from .errors import EXCEPTION_HANDLERS, error_response
from .durable import replay
from .front import FrontDoor, document
from .readiness import not_served
from .functions import describe_function, list_functions
from .auto_routes import auto, warm_router
from .openai_compat import chat_completions, embeddings, models
from .model_routes import (evaluate_version, history, promote_version, retire_version, rollback_function,
                           version_artifact)
from .hive import Hive
from .job_routes import JOB_ROUTES
from .jobs import JobBoard
from .nodes import (
    calibrate_node,
    heartbeat,
    leave,
    list_nodes,
    post_calibration,
    post_chunk,
    post_chunks,
    post_results,
    register,
)
from .admin import drain, drain_status
from .dataset_routes import delete_dataset, get_dataset, list_datasets, node_dataset, push_dataset
from .tasks import cancel_task, get_task, list_tasks

__all__ = ["create_app", "create_asgi", "from_env"]

log = logging.getLogger("colabhive.gateway")


@get("/healthz", tags=["ops"], summary="Liveness, what is served and why the rest is not")
async def healthz(request: Request) -> dict[str, Any]:
    """Always 200 while the gateway answers (liveness; ``status`` says ok or draining), served
    or not: ``not_served`` lists each function a plain call could not run now, with why."""
    hive: Hive = request.app.state.hive
    versions = sorted(ref for ref in hive.catalog if hive.serving(ref))
    # a name is ready when the version a plain call runs is served
    ready = sorted(n for n in hive.lifecycle.names if (d := hive.lifecycle.default_ref(n)) and d in versions)
    return {
        "status": "draining" if hive.draining else "ok",
        "version": __version__,
        "nodes": len(hive.nodes.live()),
        "ready": ready,
        "ready_versions": versions,
        "not_served": not_served(hive),
    }


async def _reap_jobs(hive: Hive) -> None:
    """Jobs whose node went silent go back to the queue even while no node asks for work."""
    while True:
        await asyncio.sleep(0.5)
        try:
            hive.jobs.reap()
        except Exception:  # the reaper must outlive any single bad job
            log.exception("job reaper pass failed")


def _lifespan(hive: Hive):  # -> a Litestar lifespan context manager
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await hive.start()
        replayed = await replay(hive)
        await hive.jobs.start()
        reaper = asyncio.create_task(_reap_jobs(hive))
        warm = asyncio.create_task(warm_router(hive))
        log.info("gateway ready: %d functions, %d async tasks replayed, %d training jobs unfinished",
                 len(hive.catalog), replayed, len(hive.jobs.jobs))
        try:
            yield
        finally:
            reaper.cancel()
            warm.cancel()
            await hive.stop()

    return lifespan


async def _json_not_found(response: Response) -> Response:
    """Litestar's OpenAPI router answers unknown /docs/<page> with an HTML page of its own;
    every error of this gateway is JSON, that one included."""
    if not isinstance(response, Response):  # an ASGI app (a streamed reply) writes its own errors
        return response
    if response.status_code == 404 and (response.media_type or "").startswith("text/html"):
        return error_response(404, "not_found", "no such documentation page; the docs are at /docs")
    return response


def create_app(cfg: HiveConfig) -> Litestar:
    hive = Hive(cfg)
    hive.jobs = JobBoard(hive)
    openapi = (
        OpenAPIConfig(
            title="ColabHive",
            version=__version__,
            description="Functions served by a hive of heterogeneous nodes.",
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        )
        if cfg.gateway.docs
        else None
    )
    app = Litestar(
        route_handlers=[
            healthz,
            list_functions,
            describe_function,
            register,
            post_results,
            post_chunk,
            post_chunks,
            heartbeat,
            post_calibration,
            calibrate_node,
            leave,
            list_nodes,
            get_task,
            cancel_task,
            list_tasks,
            drain,
            drain_status,
            evaluate_version,
            promote_version,
            rollback_function,
            retire_version,
            history,
            version_artifact,
            models,
            embeddings,
            chat_completions,
            auto,
            *JOB_ROUTES,
            push_dataset,
            list_datasets,
            get_dataset,
            delete_dataset,
            node_dataset,
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        after_request=_json_not_found,
        openapi_config=openapi,
        request_max_body_size=cfg.limits.max_body_bytes,
        lifespan=[_lifespan(hive)],
        logging_config=None,
        debug=False,
    )
    app.state.hive = hive
    if openapi is not None:  # the front door's routes have no Litestar handler to document them
        document(app.openapi_schema)
    return app


def _die_with_parent() -> None:
    """Granian runs the app in a child process; if the parent is killed with -9 the child
    would live on holding the port and the queues. Ask Linux to kill it with its parent."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def create_asgi(cfg: HiveConfig) -> FrontDoor:
    """The served application: the front door (invoke and poll), Litestar behind it."""
    app = create_app(cfg)
    return FrontDoor(app, app.state.hive)


def from_env() -> FrontDoor:
    """Granian's factory target: the CLI passes the resolved config in COLABHIVE_CONFIG_JSON."""
    _die_with_parent()
    logging.basicConfig(level=os.environ.get("COLABHIVE_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = config_from_json(os.environ["COLABHIVE_CONFIG_JSON"])
    return create_asgi(cfg)
