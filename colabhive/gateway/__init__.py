"""The gateway: one Litestar app, served by Granian, holding queues and the catalog."""

from .app import create_app

__all__ = ["create_app"]
