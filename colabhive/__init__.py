"""ColabHive: right-sized models served and trained across a hive of heterogeneous nodes."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import HiveError  # noqa: E402
from .families.base import TaskFamily  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .manifests import Manifest  # noqa: E402
from .runners.base import Runner  # noqa: E402
from .sdk import AsyncClient, Client  # noqa: E402
from .wire import Device, DeviceStats  # noqa: E402

__all__ = [
    "AsyncClient",
    "Client",
    "Device",
    "DeviceStats",
    "HiveError",
    "Manifest",
    "Runner",
    "TaskFamily",
    "__version__",
    "hookimpl",
]
