"""One issuer's keys as a fleet shares them: the entry the fetching process writes to the shared
cache, and the two claims that keep one fetch in flight and bound unknown-kid refreshes.

Pure: the cache is injected (a ``shared.SharedCache``, duck-typed: ``key``, ``get``, ``set``,
``claim``, ``release``; none of them raises). ``JWKSource`` decides when to use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import JWKSError
from .keys import KeySet, parse_jwks

__all__ = ["SharedKeys"]


class SharedKeys:
    """The shared-cache side of one ``JWKSource``: its entries are keyed by a digest of the exact
    issuer and JWKS (or discovery) URL and carry both, so an entry is only ever used by the
    source it was written for; the URL in an entry is never adopted."""

    def __init__(self, cache: Any, issuer: str, origin: str):
        self.cache = cache
        self.issuer = issuer
        self.origin = origin
        self.entry_key = cache.key("jwks", issuer, origin)
        self.cooldown_key = cache.key("jwks-kid-refresh", issuer, origin)
        self.fetch_key = cache.key("jwks-fetch", issuer, origin)

    def read(
        self, algorithms: Iterable[str], *, now: float, newer_than: float | None = None, kid: str | None = None
    ) -> tuple[KeySet, float, float] | None:
        """(keys, fetched_at, ttl) of a fresh entry written for this issuer and URL, or None.

        None also when the entry is not newer than ``newer_than``, has no usable key, lacks
        ``kid`` (when given), or is malformed (another version's, or a tampered cache).
        """
        entry = self.cache.get(self.entry_key)
        if type(entry) is not dict or entry.get("issuer") != self.issuer or entry.get("origin") != self.origin:
            return None
        try:
            fetched_at, ttl = float(entry["fetched_at"]), float(entry["ttl"])
            if not (now < fetched_at + ttl) or (newer_than is not None and fetched_at <= newer_than):
                return None
            keyset = parse_jwks(entry["jwks"], algorithms)
        except (JWKSError, ValueError, TypeError, KeyError, RecursionError):
            return None
        if not keyset.all or (kid is not None and kid not in keyset.by_kid):
            return None
        return keyset, fetched_at, ttl

    def write(self, jwks: Any, *, fetched_at: float, ttl: float, keep_for: float) -> None:
        """Publish a document just fetched from the issuer (kept ``keep_for`` seconds: TTL + stale window)."""
        entry = {"issuer": self.issuer, "origin": self.origin, "jwks": jwks, "fetched_at": fetched_at, "ttl": ttl}
        self.cache.set(self.entry_key, entry, keep_for)

    def claim_fetch(self, seconds: float, owner: str) -> bool | None:
        """True for the one process that fetches now; False: another one is; None: cache outage."""
        return self.cache.claim(self.fetch_key, seconds, owner)

    def release_fetch(self, owner: str) -> None:
        self.cache.release(self.fetch_key, owner)

    def claim_kid_refresh(self, seconds: float) -> bool | None:
        """The fleet-wide cooldown of refreshes caused by unknown kids (attacker-controlled)."""
        return self.cache.claim(self.cooldown_key, seconds)

    def fetch_in_flight(self) -> bool:
        return self.cache.get(self.fetch_key) is not None
