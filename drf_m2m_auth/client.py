"""Calling side: client_credentials access tokens, cached, refreshed ahead of expiry, shared.

Pure: imports neither Django nor DRF. A shared cache is duck-typed; only resolving a Django cache
(or an alias string) imports :mod:`drf_m2m_auth.shared`, and Django, lazily.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .bearer_auth import BearerAuth
from .token_cache import SharedTokenCache, resolve_cache
from .token_endpoint import (
    AccessDenied,
    IssuerUnavailable,
    MalformedTokenResponse,
    RateLimited,
    Token,
    TokenEndpoint,
    TokenRequestError,
)

__all__ = [
    "ClientCredentials",
    "BearerAuth",
    "TokenRequestError",
    "AccessDenied",
    "IssuerUnavailable",
    "RateLimited",
    "MalformedTokenResponse",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Held:
    token: Token
    refresh_at: float


@dataclass(frozen=True)
class _Failure:
    until: float
    error: TokenRequestError


class ClientCredentials:
    """OAuth 2.0 client_credentials (RFC 6749 4.4) tokens for calling an API, fetched rarely.

    ``requests.get(url, auth=creds.auth)`` is all a caller needs; ``creds.token()`` returns the
    bare access token string.

    Arguments: ``token_url`` (https, or http on a loopback host for tests), ``client_id``,
    ``client_secret``, ``audience`` (sent as Auth0's ``audience`` parameter; None to omit it, as
    Okta needs), ``scope`` (space-delimited string, or None to let the issuer choose).

    ``cache``: None (this process only), a Django cache alias string (resolved at call time, so
    Django is imported only then), a Django cache, a ``drf_m2m_auth.shared.SharedCache``, or any
    object with Django's ``get/set/add/delete``. Given one, every process shares one token, a lock
    in it makes a cold fleet send one request, and forced renewals (below) are counted fleet-wide.
    The cached value *is* the access token: the cache must be trusted as much as the token. Keys
    are digests of the exact token URL, client id, audience, scope, extra params (and DPoP key)
    under ``CACHE_KEY_PREFIX``; an entry is used only if it names that exact identity; never the
    secret. A cache outage degrades to per-process tokens, never to an error.

    Keyword options:

    * ``auth_method``: ``"client_secret_post"`` (Auth0's default) or ``"client_secret_basic"``.
    * ``extra_params``: more token-request parameters, e.g. ``{"organization": "org_123"}``.
    * ``refresh_margin`` (60 s) and ``refresh_jitter`` (60 s): a token is renewed
      ``margin + U(0, jitter)`` seconds before it expires (each capped at a quarter of its
      lifetime), so a fleet started together does not refresh together. A failed refresh ahead
      of expiry keeps the current token until it really expires.
    * ``timeout`` (10 s): connect and read timeout of one token request. The token request never
      follows a redirect (it would re-send the secret): a 3xx is a ``TokenRequestError``.
    * ``max_retries`` (2), ``backoff`` (0.5 s), ``max_wait`` (10 s): 5xx, timeouts and 429 are
      retried with exponential backoff and full jitter, honouring ``Retry-After``; a wait longer
      than ``max_wait`` is not slept: the error is raised at once.
    * ``failure_cooldown`` (5 s): after a failed fetch, calls fail fast for this long (or for
      the issuer's ``Retry-After``) instead of hammering the issuer.
    * ``reject_cooldown`` (30 s): an API's 401 ``invalid_token`` renews the token at once and
      resends once; further forced renewals for this (token URL, client, audience, scope) happen
      at most once per ``reject_cooldown`` -- per fleet when a shared cache is given -- so an API
      that rejects every token cannot burn the token quota.
    * ``clock`` (``time.time``): wall clock; shared-cache expiries compare across processes.
    * ``dpop`` (False): True to make DPoP-bound tokens (RFC 9449) with a fresh ES256 key held in
      memory, or a private key (EC, RSA, Ed25519) that every process loads, so they can share one
      token. Each token request and each API call then carries a fresh proof (new ``jti``,
      ``ath``, the server's latest ``DPoP-Nonce``); a ``use_dpop_nonce`` answer is retried once.

    Thread-safe. After ``os.fork()`` the child gets a fresh lock and HTTP session.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        audience: str | None,
        scope: str | None = None,
        cache: Any = None,
        *,
        auth_method: str = "client_secret_post",
        extra_params: Mapping[str, str] | None = None,
        refresh_margin: float = 60.0,
        refresh_jitter: float = 60.0,
        timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_wait: float = 10.0,
        failure_cooldown: float = 5.0,
        reject_cooldown: float = 30.0,
        clock: Callable[[], float] = time.time,
        dpop: Any = False,
    ) -> None:
        self.token_url, self.client_id, self.audience, self.scope = (token_url, client_id, audience, scope)
        self.extra_params = dict(extra_params or {})
        self.refresh_margin, self.refresh_jitter = refresh_margin, refresh_jitter
        self.timeout, self.max_retries, self.backoff, self.max_wait = (timeout, max_retries, backoff, max_wait)
        self.failure_cooldown, self.reject_cooldown = failure_cooldown, reject_cooldown
        self._clock, self._cache = clock, cache
        self._shared: SharedTokenCache | None = None  # built on first use
        # One draw per instance: each process renews at its own point in the jitter window.
        self._jitter_fraction = random.random()  # noqa: S311 -- refresh jitter, not a secret
        self._held: _Held | None = None
        self._failure: _Failure | None = None
        self._last_forced: float | None = None  # when this process last renewed because of a 401
        self._dpop = _dpop_key(dpop)
        params = dict(self.extra_params)
        if audience is not None:
            params["audience"] = audience
        if scope:
            params["scope"] = scope
        self._endpoint = TokenEndpoint(
            token_url,
            client_id,
            client_secret,
            params=params,
            auth_method=auth_method,
            timeout=timeout,
            backoff=backoff,
            max_wait=max_wait,
            default_retry_after=failure_cooldown,
            clock=clock,
            dpop=self._dpop,
        )
        # What a shared entry must be for: a DPoP-bound token only works with its own key.
        self._identity: list[Any] = [
            token_url,
            client_id,
            audience,
            scope,
            sorted([str(k), str(v)] for k, v in self.extra_params.items()),
            self._dpop.thumbprint if self._dpop is not None else None,
        ]
        self._reset_after_fork()
        _forget_state_on_fork(self)
        self.auth = BearerAuth(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, audience={self.audience!r}, scope={self.scope!r})"
        )

    def token(self) -> str:
        """Return a valid access token, fetching one only when none is fresh enough."""
        return self._current().access_token

    def current_token(self) -> Token:
        """The valid access token with its type (``"Bearer"`` or ``"DPoP"``) and times."""
        return self._current()

    def dpop_proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A fresh DPoP proof for one request to ``url``, with the nonce that server last sent."""
        return self._endpoint.dpop_proof(method, url, access_token)

    def remember_nonce(self, url: str, response: Any) -> bool:
        """Keep the ``DPoP-Nonce`` a server sent (RFC 9449 8, 9); True when there was a new one."""
        return self._endpoint.remember_nonce(url, response)

    def invalidate(self, access_token: str) -> bool:
        """Forget ``access_token`` because an API rejected it (401 ``invalid_token``).

        True when a replacement may be used now: the token was already replaced, another process
        of the fleet already renewed it, or this is the first forced renewal within
        ``reject_cooldown`` (fleet-wide with a shared cache). False when the cooldown forbids it.
        """
        with self._lock:
            held = self._held
            if held is None or held.token.access_token != access_token:
                return True  # already replaced (another thread saw the same 401)
            shared, now = self._shared_tokens(), self._clock()
            allowed = self._last_forced is None or now - self._last_forced >= self.reject_cooldown
            if allowed and shared is not None:
                allowed = shared.claim_renewal(self.reject_cooldown) is not False  # None: cache down
            if not allowed:
                # Another process of the fleet renewed within the cooldown: use its token, if any.
                other = shared.token() if shared is not None else None
                if other is None or other.access_token == access_token or now >= other.expires_at:
                    return False
                self._held = _Held(other, self._refresh_at(other))
                return True
            self._last_forced = now
            self._held, self._failure = None, None
            if shared is not None:
                shared.drop(access_token)
            return True

    # -- renewal ---------------------------------------------------------------------------------

    def _current(self) -> Token:
        held, now = self._held, self._clock()
        if held is not None and now < held.refresh_at:
            return held.token
        usable = held is not None and now < held.token.expires_at
        # A still-valid token need not wait for another thread's refresh: use it meanwhile.
        if not self._lock.acquire(blocking=not usable):
            assert held is not None  # non-blocking only while a valid token is held
            return held.token
        try:
            return self._renew()
        finally:
            self._lock.release()

    def _renew(self) -> Token:  # called with self._lock held
        held, now = self._held, self._clock()
        if held is not None and now < held.refresh_at:
            return held.token  # another thread renewed it while we waited for the lock
        current = held.token if held is not None and now < held.token.expires_at else None
        shared = self._shared_tokens()
        failure = self._failure
        if (failure is None or now >= failure.until) and shared is not None:
            fleet = shared.failure()  # another process failed within its cooldown
            failure = _Failure(*fleet) if fleet is not None else None
        if failure is not None and now < failure.until:
            if current is not None:
                return current
            raise failure.error.with_traceback(None)
        try:
            token = self._obtain(current)
        except TokenRequestError as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.failure_cooldown
            self._failure = _Failure(self._clock() + wait, exc)
            if shared is not None and wait > 0:
                shared.store_failure(self._failure.until, exc)
            if current is None:
                raise
            logger.warning(
                "token refresh failed for client_id=%s audience=%s (%s); using the current token until it expires",
                self.client_id,
                self.audience,
                exc,
            )
            return current
        self._failure = None
        self._held = _Held(token, self._refresh_at(token))
        return token

    def _refresh_at(self, token: Token) -> float:
        lifetime = max(token.expires_at - token.obtained_at, 0.0)
        lead = min(self.refresh_margin, lifetime / 4) + self._jitter_fraction * min(self.refresh_jitter, lifetime / 4)
        return token.expires_at - lead

    def _fresh(self, token: Token | None, current: Token | None) -> bool:
        return token is not None and token != current and self._clock() < self._refresh_at(token)

    def _obtain(self, current: Token | None) -> Token:
        # A refresh ahead of expiry is tried once; with no valid token we retry with backoff.
        attempts = 1 if current is not None else 1 + self.max_retries
        shared = self._shared_tokens()
        if shared is None:
            return self._endpoint.fetch(attempts)
        deadline = time.monotonic() + self._lock_ttl()
        while True:
            token = shared.token()
            if token is not None and self._fresh(token, current):
                return token
            if shared.lock(self._lock_ttl(), self._owner) is not False:  # None: the cache is down
                try:
                    token = shared.token()
                    if token is not None and self._fresh(token, current):
                        return token  # the previous holder stored it just before we locked
                    token = self._endpoint.fetch(attempts)
                    shared.store(token)
                    return token
                finally:
                    shared.unlock(self._owner)
            if current is not None:
                return current  # another process is refreshing; ours is still valid
            if time.monotonic() >= deadline:
                logger.warning("gave up waiting for the shared token lock; fetching directly")
                return self._endpoint.fetch(attempts)
            time.sleep(0.05)

    def _lock_ttl(self) -> float:
        attempts = 1 + self.max_retries
        return attempts * (self.timeout + 1) + self.max_retries * self.max_wait

    def _shared_tokens(self) -> SharedTokenCache | None:
        if self._cache is None:
            return None
        if self._shared is None:
            self._shared = SharedTokenCache(resolve_cache(self._cache), self._identity, self._clock)
        return self._shared

    def _reset_after_fork(self) -> None:
        # A requests session's pooled sockets and a lock held by another thread must not
        # cross a fork (gunicorn --preload): the child starts both afresh.
        self._lock = threading.Lock()
        self._owner = uuid.uuid4().hex
        self._endpoint.reset_session()


def _forget_state_on_fork(credentials: ClientCredentials) -> None:
    if hasattr(os, "register_at_fork"):
        ref = weakref.ref(credentials)

        def reset_in_child() -> None:
            alive = ref()
            if alive is not None:
                alive._reset_after_fork()

        os.register_at_fork(after_in_child=reset_in_child)


def _dpop_key(dpop: Any) -> Any:
    if dpop is False or dpop is None:
        return None
    from .dpop_key import DPoPKey  # only DPoP users pay for importing the proof code

    if isinstance(dpop, DPoPKey):
        return dpop
    return DPoPKey(None if dpop is True else dpop)
