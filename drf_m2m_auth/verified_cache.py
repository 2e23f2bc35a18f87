"""The verified-token cache of a TokenVerifier: digest of a raw token -> what verifying it produced.
Pure: no Django.

A hit skips only the parsing and the signature: the verifier still checks exp and nbf (with the
leeway folded into ``not_after``/``not_before``) and that the signing key is still published.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .jwks import JWKSource
    from .keys import VerifyKey
    from .principal import AccessToken, ServiceClient

__all__ = ["CacheEntry", "VerifiedTokenCache"]


class CacheEntry:
    __slots__ = ("pair", "not_after", "not_before", "exp", "key", "source", "generation")

    def __init__(
        self,
        token: AccessToken,
        client: ServiceClient,
        exp: float,
        nbf: float,
        leeway: float,
        key: VerifyKey,
        source: JWKSource,
    ):
        self.pair = (client, token)
        self.exp = exp
        self.not_after, self.not_before = exp + leeway, nbf - leeway  # leeway folded in once
        self.key, self.source, self.generation = key, source, source.generation


class VerifiedTokenCache:
    """At most ``size`` entries (none when ``size <= 0``). ``entries`` is a plain dict: the
    verifier's hot path reads it directly (one ``dict.get``), only writes take the lock."""

    def __init__(self, size: int):
        self.size = size
        self.entries: dict[bytes, CacheEntry] = {}
        self._lock = threading.Lock()

    def remember(self, digest: bytes, entry: CacheEntry, now: float) -> None:
        if self.size <= 0:
            return
        with self._lock:
            entries = self.entries
            if len(entries) >= self.size:
                self._evict(entries, now)
            entries[digest] = entry

    def _evict(self, entries: dict[bytes, CacheEntry], now: float) -> None:
        # Amortised: drop every expired entry, then the oldest until 90 % full, so a stream of
        # distinct tokens pays one scan per size/10 inserts, not one per insert.
        for d in [d for d, e in entries.items() if e.not_after <= now]:
            del entries[d]
        target = int(self.size * 0.9)
        while len(entries) > target:
            del entries[next(iter(entries))]
