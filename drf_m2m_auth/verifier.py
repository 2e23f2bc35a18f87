"""The process-wide TokenVerifier: built from the validated settings on first use, rebuilt after
each settings change. Django glue above conf (settings) and shared (the fleet's cache); conf itself
imports neither this module nor shared, so the two never import each other."""

from __future__ import annotations

import threading
from typing import Any

from .conf import ensure_valid, m2m_settings, on_reset

__all__ = ["build_verifier", "get_verifier", "send_jwks_signal"]


_verifier = None
_verifier_lock = threading.Lock()


def send_jwks_signal(name: str, **details: Any) -> None:
    """JWKSource's on_event -> the jwks_refreshed / jwks_fetch_failed Django signals."""
    from .jwks import JWKSource
    from .signals import JWKS_SIGNALS

    signal = JWKS_SIGNALS.get(name)
    if signal is not None and signal.receivers:
        signal.send_robust(sender=JWKSource, **details)  # one bad receiver must not starve the others


def build_verifier():
    """A TokenVerifier from the validated settings (ConfigurationInvalid when they are not)."""
    from .fetch import HTTPFetcher
    from .jwks import JWKSource
    from .shared import get_shared_cache
    from .tokens import TokenVerifier
    from .trust import IssuerTrust

    ensure_valid()
    s = m2m_settings
    fetch = HTTPFetcher(timeout=s.HTTP_TIMEOUT, max_bytes=s.JWKS_MAX_BYTES, insecure_hosts=s.INSECURE_JWKS_HOSTS)
    cache = get_shared_cache()
    trusts = []
    for policy in s.issuer_policies:
        source = JWKSource(
            policy.issuer,
            jwks_url=policy.jwks_url,
            algorithms=policy.algorithms,
            fetch=fetch,
            shared_cache=cache,
            default_ttl=s.JWKS_DEFAULT_TTL,
            min_ttl=s.JWKS_MIN_TTL,
            max_ttl=s.JWKS_MAX_TTL,
            cooldown=s.JWKS_REFRESH_COOLDOWN,
            stale_if_error=s.JWKS_STALE_IF_ERROR,
            cold_retry=s.JWKS_COLD_RETRY,
            lock_wait=s.HTTP_TIMEOUT,
            on_event=send_jwks_signal,
        )
        trusts.append(IssuerTrust.from_policy(policy, source))  # aliases share the entry's JWKSource
    return TokenVerifier(trusts=trusts, max_token_bytes=s.MAX_TOKEN_BYTES, cache_size=s.VERIFIED_TOKEN_CACHE_SIZE)


def get_verifier():
    """The process-wide TokenVerifier (JWKS memo and verified-token cache live inside it)."""
    global _verifier
    verifier = _verifier
    if verifier is None:
        with _verifier_lock:
            if _verifier is None:
                _verifier = build_verifier()
            verifier = _verifier
    return verifier


@on_reset
def _drop_verifier() -> None:
    global _verifier
    _verifier = None
