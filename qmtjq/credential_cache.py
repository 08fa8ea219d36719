"""Per-process cache of credential lookups (API keys, client ids), invalidated across processes.

Looking up the key's row and its client was ~15 % of an upload's server CPU.
Each web process keeps what it looked up; every change to a credential
(save, delete, rotation, revocation, enabling or disabling) writes a new
random version into the shared cache (`credentials_changed`, run after the
transaction commits). Every process compares its version with the shared one
at most every `CHECK_SECONDS` and drops everything on a difference, so a
disabled or rotated key stops working on every process within that time.

The shared cache must really be shared for this (the database cache by
default, Redis with CACHE_URL); a lost or evicted version key only causes a
flush, never a stale answer. Time-based expiry needs no invalidation: callers
keep the key row and check its dates on every request.
"""

import logging
import threading
import time
import uuid

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

VERSION_KEY = "qmtjq:credentials:version"
CHECK_SECONDS = 0.5  # a change elsewhere is seen within this, so well within one second
MAX_ENTRIES = 10_000


class CredentialCache:
    def __init__(self) -> None:
        self._entries: dict[str, object] = {}
        self._version: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def version(self) -> str | None:
        """The shared version this process trusts now (None: the shared cache is unusable, do not cache)."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS:
            return self._version
        shared = _shared_version()
        with self._lock:
            if shared != self._version:
                self._entries.clear()
                self._version = shared
            self._checked_at = now
        return shared

    def get(self, key: str):
        if self.version() is None:
            return None
        return self._entries.get(key)

    def put(self, key: str, value, *, version: str | None) -> None:
        """Keep `value` only if nothing changed since `version` was read (before the database lookup)."""
        if version is None:
            return
        with self._lock:
            if version != self._version:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._version = None
            self._checked_at = float("-inf")


credential_cache = CredentialCache()


def _shared_version() -> str | None:
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            version = cache.get(VERSION_KEY)
        return version
    except Exception:  # the cache is down or its table is missing: look credentials up every time
        logger.warning("shared cache unavailable; credentials are not cached", exc_info=True)
        return None


def _bump() -> None:
    credential_cache.clear()
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.error("could not publish a credential change to the shared cache", exc_info=True)
    credential_cache.clear()


def credentials_changed() -> None:
    """A credential changed: every process drops its cached lookups, now and again after the commit.

    Now, so this process never answers from its cache again; after the commit,
    because another process may have re-read the old rows in between.
    """
    _bump()
    transaction.on_commit(_bump)
