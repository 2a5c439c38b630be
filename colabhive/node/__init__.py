"""The node runtime: pulls work from the gateway and runs it on local hardware."""

from .main import Node

__all__ = ["Node"]
