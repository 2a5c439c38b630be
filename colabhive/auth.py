"""Credentials: client API keys (per tenant) and node join tokens, stored as sha256.

Secrets are shown once, when created, and never logged or put on a span. Nodes trade
their join token for a per-session node secret at registration, so a node can only post
results under the id the gateway issued to it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from .store import Store

__all__ = ["Auth", "create_api_key", "create_join_token", "digest", "new_secret"]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


async def create_api_key(store: Store, tenant: str) -> str:
    key = new_secret("chk")
    await store.execute(
        "insert_api_key", {"id": uuid.uuid4().hex[:12], "tenant": tenant, "hash": digest(key), "created_at": time.time()}
    )
    return key


async def create_join_token(store: Store, note: str = "") -> str:
    token = new_secret("chj")
    await store.execute(
        "insert_join_token", {"id": uuid.uuid4().hex[:12], "hash": digest(token), "note": note, "created_at": time.time()}
    )
    return token


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class Auth:
    def __init__(self, store: Store, config_tokens: list[str], require_keys: bool) -> None:
        self.store = store
        self.config_token_hashes = {digest(t) for t in config_tokens}
        self.require_keys = require_keys
        self._key_cache: dict[str, str] = {}  # hash -> tenant (keys are revoked by restarting)

    async def tenant_for_key(self, key: str | None) -> str | None:
        """The key's tenant, or None when the key is unknown."""
        if key is None:
            return None
        h = digest(key)
        tenant = self._key_cache.get(h)
        if tenant is None:
            rows = await self.store.fetch("api_key_by_hash", {"hash": h})
            if not rows:
                return None
            tenant = self._key_cache[h] = rows[0]["tenant"]
        return tenant

    async def joining_allowed(self, token: str | None) -> bool:
        """Open hive (no tokens configured or created) or a known token."""
        if token is not None:
            h = digest(token)
            if any(hmac.compare_digest(h, c) for c in self.config_token_hashes):
                return True
            if await self.store.fetch("join_token_by_hash", {"hash": h}):
                return True
            return False
        if self.config_token_hashes:
            return False
        return not await self.store.fetch("any_join_token")
