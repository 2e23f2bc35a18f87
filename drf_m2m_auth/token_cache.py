"""The calling side's entries in the fleet's shared cache. Pure: no Django at import time.

Internal to :mod:`drf_m2m_auth.client`. One :class:`SharedTokenCache` per ClientCredentials holds
the exact identity its entries are for -- (token URL, client id, audience, scope, extra params,
DPoP key thumbprint) -- and keeps four entries under ``SharedCache.key(kind, *identity)``: the
token, the lock a cold fleet fetches under, the forced-renewal claim (one per ``reject_cooldown``
per fleet) and the last failure (one request to a failing issuer per cooldown per fleet). Every
entry read back must name that identity; anything else is ignored. Never the client secret.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from .token_endpoint import (
    AccessDenied,
    IssuerUnavailable,
    MalformedTokenResponse,
    RateLimited,
    Token,
    TokenRequestError,
)

__all__ = ["SharedTokenCache", "resolve_cache"]

ENTRY_VERSION = 2  # the entries' layout
_ERRORS: dict[str, type[TokenRequestError]] = {
    cls.__name__: cls
    for cls in (TokenRequestError, AccessDenied, IssuerUnavailable, RateLimited, MalformedTokenResponse)
}


class SharedTokenCache:
    """``shared`` is a SharedCache-like object (``key/get/set/delete/claim/release``, never raising;
    ``claim`` answers None while the cache is unreachable). ``clock`` is the wall clock."""

    def __init__(self, shared: Any, identity: list[Any], clock: Callable[[], float]):
        self.shared, self.identity, self.clock = shared, identity, clock
        self._keys = {kind: shared.key(f"client-{kind}", *identity) for kind in ("token", "lock", "renewal", "failure")}

    def _read(self, kind: str) -> dict[str, Any] | None:
        raw = self.shared.get(self._keys[kind])
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            return None
        if type(data) is not dict or data.get("v") != ENTRY_VERSION or data.get("for") != self.identity:
            return None  # written for another identity (or another layout): never use it
        return data

    def _write(self, kind: str, data: dict[str, Any], timeout: float) -> None:
        self.shared.set(self._keys[kind], json.dumps({"v": ENTRY_VERSION, "for": self.identity, **data}), timeout)

    # -- the token ---------------------------------------------------------------------------------

    def token(self) -> Token | None:
        """The fleet's token for exactly this identity, or None (absent, foreign or unreadable)."""
        data = self._read("token")
        if data is None:
            return None
        try:
            token = Token(
                str(data["access_token"]),
                float(data["expires_at"]),
                float(data["obtained_at"]),
                str(data.get("token_type", "Bearer")),
            )
        except (TypeError, ValueError, KeyError):
            return None
        if not (math.isfinite(token.expires_at) and math.isfinite(token.obtained_at)):
            return None
        ahead = token.obtained_at - self.clock()
        if ahead > 0:
            # Written by a host whose clock runs ahead: its obtained_at (and so its expiry) would
            # hold off renewals here. Shift both back to our clock; the lifetime is unchanged.
            token = Token(token.access_token, token.expires_at - ahead, token.obtained_at - ahead, token.token_type)
        return token

    def store(self, token: Token) -> None:
        self._write("token", dict(token.__dict__), token.expires_at - self.clock())

    def drop(self, access_token: str) -> None:
        """Forget the fleet's token if it is still ``access_token`` (an API rejected it)."""
        current = self.token()
        if current is not None and current.access_token == access_token:
            self.shared.delete(self._keys["token"])

    # -- claims ------------------------------------------------------------------------------------

    def lock(self, timeout: float, owner: str) -> bool | None:
        """The fleet's fetch lock: True when ours, False when another holds it, None if unreachable."""
        return self.shared.claim(self._keys["lock"], timeout, owner)

    def unlock(self, owner: str) -> None:
        self.shared.release(self._keys["lock"], owner)

    def claim_renewal(self, cooldown: float) -> bool | None:
        """One forced renewal per ``cooldown`` for the whole fleet; None if unreachable."""
        return self.shared.claim(self._keys["renewal"], cooldown)

    # -- failures ------------------------------------------------------------------------------------

    def failure(self) -> tuple[float, TokenRequestError] | None:
        """(until, error) when a process of the fleet failed to get a token within its cooldown."""
        data = self._read("failure")
        if data is None:
            return None
        try:
            until, cls = float(data["until"]), _ERRORS[data["type"]]
            error = cls(
                str(data["message"]),
                status=data.get("status"),
                error=data.get("error"),
                retry_after=data.get("retry_after"),
            )
        except (TypeError, ValueError, KeyError):
            return None
        return (until, error) if self.clock() < until else None

    def store_failure(self, until: float, error: TokenRequestError) -> None:
        # The message names the token URL, client id and audience; the secret was scrubbed from it.
        data = {"until": until, "type": type(error).__name__, "message": str(error), "status": error.status}
        self._write("failure", {**data, "error": error.error, "retry_after": error.retry_after}, until - self.clock())


def resolve_cache(cache: Any) -> Any:
    """The shared-cache object for ``cache``: a SharedCache-like object is used as is; anything
    else is wrapped by drf_m2m_auth.shared (imported here, lazily; an alias string needs Django)."""
    if callable(getattr(cache, "claim", None)) and callable(getattr(cache, "key", None)):
        return cache
    from .shared import SharedCache, shared_cache_for

    if isinstance(cache, str) or any(cls.__module__.startswith("django.core.cache") for cls in type(cache).__mro__):
        return shared_cache_for(cache)  # CACHE_KEY_PREFIX from the settings
    return SharedCache(cache)  # a plain get/set/add/delete object: no settings needed
