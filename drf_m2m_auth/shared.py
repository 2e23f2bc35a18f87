"""Coordination through the shared Django cache: one key scheme, one claim(), one safe_call().

Every cross-process protocol of the package goes through a :class:`SharedCache`: the JWKS memo
and its cold-start claim, the revocation generation, DPoP replay claims, the calling side's token
cache and lock, status lists. The pure core receives a ``SharedCache`` (or ``None``) as an
injected object and never touches a Django cache, or a backend's internals, itself.

Rules it enforces for every caller:

- Keys are ``<CACHE_KEY_PREFIX>:<kind>:<format version>:<digest>`` where the digest is SHA-256 of
  the exact parts (issuer, URL, client id ...), so two distinct values can never share an entry
  and a key never exceeds a backend's length limit. Readers must still check that an entry's
  stored identity equals their own (``SharedCache`` stores nothing about meaning).
- A cache outage never fails a request: every method catches the backend's exception, logs it
  once per outage (with the method and the cache alias, never a key's meaning or a value) and
  answers a value that says "unknown" (``None`` from ``add``/``claim``, the default from ``get``).
- ``add``/``claim`` are atomic for every backend Django ships, including FileBasedCache (whose own
  ``add()`` is check-then-set): exactly one process wins a claim.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["SharedCache", "safe_call", "get_shared_cache", "shared_cache_for", "KEY_FORMAT_VERSION"]

logger = logging.getLogger(__name__)

KEY_FORMAT_VERSION = "v2"  # bump when what a key's parts mean changes: old entries are never read


_outage_lock = threading.Lock()
_in_outage: set[str] = set()  # aliases whose last call failed: log once per outage, and recovery


def safe_call(fn: Callable[..., Any], *args: Any, default: Any = None, what: str = "cache", **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or ``default`` when it raises; the failure is logged once per outage.

    ``what`` names the resource in the log line (e.g. the cache alias); it must carry no secret.
    """
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 -- any backend error: Redis down, disk full, bad pickle
        with _outage_lock:
            first = what not in _in_outage
            _in_outage.add(what)
        if first:
            logger.warning("Shared cache %s is failing (%s): continuing without it", what, type(exc).__name__)
        return default
    if _in_outage and what in _in_outage:
        with _outage_lock:
            if what in _in_outage:
                _in_outage.discard(what)
                logger.warning("Shared cache %s is answering again", what)
    return result


def _backend_name(cache: Any) -> str:
    return f"{type(cache).__module__}.{type(cache).__qualname__}"


class SharedCache:
    """A Django cache used as the fleet's coordination point. Every method is safe (never raises).

    ``stores`` is False for a cache that keeps nothing (DummyCache): claims and replay protection
    cannot work through it. ``cross_process`` is False when other processes cannot see what this
    one writes (LocMemCache, DummyCache): the fleet protocols then only coordinate threads.
    """

    def __init__(self, cache: Any, *, prefix: str = "drf_m2m_auth", alias: str | None = None):
        self.cache = cache
        self.prefix = prefix
        self.alias = alias or "custom"
        self.what = f"'{self.alias}'"
        backend = _backend_name(cache)
        self.stores = not backend.endswith("DummyCache")
        self.cross_process = self.stores and not backend.endswith("LocMemCache")
        self._file_backend = hasattr(cache, "_key_to_file") and hasattr(cache, "_write_content")

    def __repr__(self) -> str:
        return f"<SharedCache alias={self.alias!r} prefix={self.prefix!r} backend={_backend_name(self.cache)}>"

    # -- keys -------------------------------------------------------------------------------

    def key(self, kind: str, *parts: Any) -> str:
        """The cache key for ``kind`` and the exact ``parts`` (a digest: no two values collide)."""
        digest = hashlib.sha256(json.dumps([kind, *parts], separators=(",", ":")).encode()).hexdigest()
        return f"{self.prefix}:{kind}:{KEY_FORMAT_VERSION}:{digest}"

    # -- plain operations, each safe ---------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return safe_call(self.cache.get, key, default, default=default, what=self.what)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        return safe_call(self.cache.get_many, keys, default={}, what=self.what)

    def set(self, key: str, value: Any, timeout: float | None) -> bool:
        """True when the backend accepted the write (False on an outage)."""
        done = safe_call(self.cache.set, key, value, _timeout(timeout), default=False, what=self.what)
        return done is not False

    def delete(self, key: str) -> None:
        safe_call(self.cache.delete, key, what=self.what)

    def add(self, key: str, value: Any, timeout: float | None) -> bool | None:
        """Store ``value`` only if ``key`` is absent: True for exactly one caller; None on an outage."""
        if self._file_backend:
            return safe_call(self._file_add, key, value, _timeout(timeout), default=None, what=self.what)
        result = safe_call(self.cache.add, key, value, _timeout(timeout), default=None, what=self.what)
        return None if result is None else bool(result)

    # -- claims --------------------------------------------------------------------------------

    def claim(self, key: str, timeout: float, owner: str | None = None) -> bool | None:
        """True for the one process (of all sharing this cache) that claims ``key`` first.

        The claim lasts ``timeout`` seconds or until :meth:`release` by its ``owner``. None when
        the cache is unreachable: the caller decides whether to act alone or to refuse.
        """
        return self.add(key, owner or uuid.uuid4().hex, timeout)

    def release(self, key: str, owner: str) -> None:
        """Drop a claim, only if ``owner`` still holds it."""
        if self.get(key) == owner:
            self.delete(key)

    # -- FileBasedCache: an atomic add ---------------------------------------------------------

    def _file_add(self, key: str, value: Any, timeout: int | None) -> bool:
        """FileBasedCache's own add() is check-then-set; this one is atomic.

        The entry is written to a temporary file in the cache directory, in the cache's own format,
        and hard-linked to the entry's name: link() fails if the name exists, so exactly one process
        wins, whatever the interleaving. An expired entry is removed by has_key() and retried once.
        """
        cache = self.cache
        fname = cache._key_to_file(key)
        cache._createdir()
        fd, tmp = tempfile.mkstemp(dir=cache._dir)
        try:
            with open(fd, "wb") as f:
                cache._write_content(f, timeout, value)
            for _ in range(2):
                try:
                    os.link(tmp, fname)
                    return True
                except FileExistsError:
                    if cache.has_key(key):  # also deletes the file when it has expired
                        return False
            return False
        finally:
            os.remove(tmp)


def _timeout(timeout: float | None) -> int | None:
    if timeout is None:
        return None
    return max(1, int(-(-float(timeout) // 1)))  # whole seconds, rounded up, at least one


# --- the configured shared cache (Django settings) -------------------------------------------

_lock = threading.Lock()
_current: list[SharedCache | None] = []  # [] = not built yet; [None] = CACHE is None
_registered: list[bool] = []  # reset() is registered with conf's on_reset (once)


def shared_cache_for(cache_or_alias: Any, *, prefix: str | None = None) -> SharedCache:
    """Wrap a Django cache (or a CACHES alias) as a SharedCache; a SharedCache is returned as is."""
    if isinstance(cache_or_alias, SharedCache):
        return cache_or_alias
    if prefix is None:
        from .conf import m2m_settings

        prefix = m2m_settings.CACHE_KEY_PREFIX
    if isinstance(cache_or_alias, str):
        from django.core.cache import caches

        return SharedCache(caches[cache_or_alias], prefix=prefix, alias=cache_or_alias)
    return SharedCache(cache_or_alias, prefix=prefix)


def get_shared_cache() -> SharedCache | None:
    """The cache every worker shares (``DRF_M2M_AUTH["CACHE"]``), or None when CACHE is None."""
    if _current:
        return _current[0]
    with _lock:
        if not _current:
            from .conf import m2m_settings, on_reset

            if not _registered:  # conf (and Django) only now: SharedCache itself needs neither
                on_reset(reset)
                _registered.append(True)
            alias = m2m_settings.CACHE
            _current.append(None if alias is None else shared_cache_for(alias))
        return _current[0]


def reset() -> None:
    """Forget the wrapper (DRF_M2M_AUTH or CACHES changed)."""
    with _lock:
        _current.clear()
