"""Durable state: SQLite through aiosqlite."""

from .db import Store, load_queries

__all__ = ["Store", "load_queries"]
