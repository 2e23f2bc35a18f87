"""What a DPoP resource server keeps between proofs: stateless nonces and the per-process replay
store. Pure: no Django. Re-exported by dpop.py, which uses both.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .jose import b64url_decode, b64url_encode

__all__ = ["NonceSource", "MemoryReplayCache"]


class NonceSource:
    """Stateless nonces every worker accepts: issue time, 8 random bytes and an HMAC over both.

    Unpredictable without the secret (RFC 9449 8), and they carry the server's clock, which bounds
    the proof's creation time when clients' clocks cannot be trusted (4.3 (11)).
    """

    def __init__(self, secret: bytes, lifetime: float = 300, *, clock: Callable[[], float] = time.time):
        self._secret = hashlib.sha256(b"drf_m2m_auth.dpop.nonce\x00" + secret).digest()
        self.lifetime = float(lifetime)
        self.clock = clock

    def issue(self) -> str:
        body = struct.pack(">Q", int(self.clock())) + secrets.token_bytes(8)
        return b64url_encode(body + hmac.new(self._secret, body, hashlib.sha256).digest()[:16])

    def age(self, nonce: Any) -> float | None:
        """Seconds since the nonce was issued, or None if it is not ours or too old."""
        try:
            raw = b64url_decode(nonce) if type(nonce) is str and len(nonce) < 64 else b""
        except ValueError:
            return None
        if len(raw) != 32:
            return None
        if not hmac.compare_digest(raw[16:], hmac.new(self._secret, raw[:16], hashlib.sha256).digest()[:16]):
            return None
        age = self.clock() - struct.unpack(">Q", raw[:8])[0]
        return age if -5 <= age <= self.lifetime else None


# --- the replay store: one atomic claim per (key, jti) ------------------------------------------


class MemoryReplayCache:
    """Per-process jti store: used when no shared cache stores anything, and while it is down.

    Sized from the proof window: ``max_entries`` proofs per ``window`` seconds. It never evicts an
    unexpired entry (that would let a busy client push a victim's jti out inside its window): when
    it is full of live entries :meth:`add` answers None and the verifier refuses with a 503.
    Entries are kept in insertion order; with one timeout that is expiry order, so dropping the
    expired ones is a pop from the front.
    """

    def __init__(self, max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries, self.clock = max_entries, clock

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: str, value: Any, timeout: float) -> bool | None:
        """True if ``key`` was not held (now it is, for ``timeout`` s); False if held; None if full."""
        now = self.clock()
        with self._lock:
            seen = self._seen
            while seen:
                first, until = next(iter(seen.items()))
                if until > now:
                    break
                seen.popitem(last=False)
            if seen.get(key, 0.0) > now:
                return False
            if len(seen) >= self.max_entries:
                return None
            seen.pop(key, None)
            seen[key] = now + timeout
            return True

    def retry_after(self) -> int:
        """Seconds until the oldest entry expires (when full, room appears then)."""
        with self._lock:
            until = next(iter(self._seen.values()), self.clock())
        return max(1, math.ceil(until - self.clock()))
