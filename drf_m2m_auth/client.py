"""Calling side: client_credentials access tokens, cached, refreshed ahead of expiry, shared."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import DEFAULT_HEADERS
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar

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

AUTH_METHODS = ("client_secret_post", "client_secret_basic")
_DENIED_ERRORS = {"access_denied", "invalid_client", "unauthorized_client", "invalid_scope", "invalid_grant"}
_INVALID_TOKEN = re.compile(r'^\s*(?:bearer|dpop)\b.*\berror\s*=\s*"?invalid_token\b', re.I | re.S)
_USE_DPOP_NONCE = re.compile(r'\bdpop\b.*\berror\s*=\s*"?use_dpop_nonce\b', re.I | re.S)
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class TokenRequestError(Exception):
    """No access token could be obtained. Never holds the client secret or a token.

    ``status`` is the issuer's HTTP status (None for network failures), ``error`` its OAuth
    error code when it sent one, ``retry_after`` the seconds it asked us to wait (429).
    """

    def __init__(self, message, *, status=None, error=None, retry_after=None):
        super().__init__(message)
        self.status, self.error, self.retry_after = status, error, retry_after


class AccessDenied(TokenRequestError):
    """The issuer refused this client (bad credentials, no grant for the audience): not retried."""


class IssuerUnavailable(TokenRequestError):
    """The issuer is down, slow or failing (5xx, timeout, connection error) after the retries."""


class RateLimited(IssuerUnavailable):
    """The issuer answered 429 for longer than we are willing to wait."""


class MalformedTokenResponse(TokenRequestError):
    """The issuer answered 2xx without a usable access_token / expires_in."""


class _NonceRequired(TokenRequestError):
    """Internal: the issuer asked for a DPoP nonce (RFC 9449 8); the request is sent again once."""


@dataclass(frozen=True)
class _Token:
    access_token: str = field(repr=False)
    expires_at: float
    obtained_at: float
    token_type: str = "Bearer"  # noqa: S105 -- "DPoP" when bound to our DPoP key (RFC 9449 5)


@dataclass(frozen=True)
class _Held:
    token: _Token
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
    Django is imported only then), or any object with Django's ``get/set/add`` (``delete``
    optional). Given one, every process shares one token and a lock in it makes a cold fleet
    send one request. The cached value *is* the access token: the cache must be trusted as much
    as the token. The key is a hash of the token URL, client id, audience, scope and extra
    params; it never holds the secret.

    Keyword options:

    * ``auth_method``: ``"client_secret_post"`` (Auth0's default) or ``"client_secret_basic"``.
    * ``extra_params``: more token-request parameters, e.g. ``{"organization": "org_123"}``.
    * ``refresh_margin`` (60 s) and ``refresh_jitter`` (60 s): a token is renewed
      ``margin + U(0, jitter)`` seconds before it expires (each capped at a quarter of its
      lifetime), so a fleet started together does not refresh together. A failed refresh ahead
      of expiry keeps the current token until it really expires.
    * ``timeout`` (10 s): connect and read timeout of one token request.
    * ``max_retries`` (2), ``backoff`` (0.5 s), ``max_wait`` (10 s): 5xx, timeouts and 429 are
      retried with exponential backoff and full jitter, honouring ``Retry-After``; a wait longer
      than ``max_wait`` is not slept: the error is raised at once.
    * ``failure_cooldown`` (5 s): after a failed fetch, calls fail fast for this long (or for
      the issuer's ``Retry-After``) instead of hammering the issuer.
    * ``reject_cooldown`` (30 s): a token younger than this is not dropped on a 401
      ``invalid_token``, so an API that rejects every token cannot burn the token quota.
    * ``clock`` (``time.time``): wall clock; shared-cache expiries compare across processes.
    * ``dpop`` (False): True to make DPoP-bound tokens (RFC 9449) with a fresh ES256 key held in
      memory, or a private key (EC, RSA, Ed25519) that every process loads, so they can share one
      token. Each token request and each API call then carries a fresh proof (new ``jti``,
      ``ath``, the server's latest ``DPoP-Nonce``); a ``use_dpop_nonce`` answer is retried once.

    Thread-safe. After ``os.fork()`` the child gets a fresh lock and HTTP session.
    """

    def __init__(
        self,
        token_url,
        client_id,
        client_secret,
        audience,
        scope=None,
        cache=None,
        *,
        auth_method="client_secret_post",
        extra_params=None,
        refresh_margin=60.0,
        refresh_jitter=60.0,
        timeout=10.0,
        max_retries=2,
        backoff=0.5,
        max_wait=10.0,
        failure_cooldown=5.0,
        reject_cooldown=30.0,
        clock=time.time,
        dpop=False,
    ):
        _check_token_url(token_url)
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {AUTH_METHODS}, not {auth_method!r}")
        self.token_url, self.client_id, self.audience, self.scope = (token_url, client_id, audience, scope)
        self.auth_method, self.extra_params = auth_method, dict(extra_params or {})
        self.refresh_margin, self.refresh_jitter = refresh_margin, refresh_jitter
        self.timeout, self.max_retries, self.backoff, self.max_wait = (timeout, max_retries, backoff, max_wait)
        self.failure_cooldown, self.reject_cooldown = failure_cooldown, reject_cooldown
        self._clock, self._cache = clock, cache
        self._client_secret = client_secret  # only ever handed to authlib's session
        # One draw per instance: each process renews at its own point in the jitter window.
        self._jitter_fraction = random.random()  # noqa: S311 -- refresh jitter, not a secret
        self._held: _Held | None = None
        self._failure: _Failure | None = None
        self._dpop = _dpop_key(dpop)
        self._nonces: dict[str, str] = {}  # origin -> the latest DPoP-Nonce it sent (RFC 9449 8, 9)
        # A DPoP-bound token is only usable with its key: processes with other keys must not share it.
        key_parts: tuple = (token_url, client_id, audience, scope, self.extra_params)
        if self._dpop is not None:
            key_parts += (self._dpop.thumbprint,)
        self._cache_key = "drf_m2m_auth.client." + _fingerprint(*key_parts)
        self._reset_after_fork()
        _forget_state_on_fork(self)
        self.auth = BearerAuth(self)

    def __repr__(self):
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, audience={self.audience!r}, scope={self.scope!r})"
        )

    def token(self) -> str:
        """Return a valid access token, fetching one only when none is fresh enough."""
        return self._current().access_token

    def _current(self) -> _Token:
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

    # -- DPoP (RFC 9449) -------------------------------------------------------------------------

    def dpop_proof(self, method, url, access_token=None) -> str:
        """A fresh DPoP proof for one request to ``url``, with the nonce that server last sent."""
        return self._dpop.proof(method, url, access_token=access_token, nonce=self._nonces.get(_origin(url)))

    def _remember_nonce(self, url, response) -> bool:
        nonce = response.headers.get("DPoP-Nonce")
        if self._dpop is None or not nonce:
            return False
        self._nonces[_origin(url)] = nonce
        return True

    def invalidate(self, access_token) -> bool:
        """Forget ``access_token`` because an API rejected it; False if it is too young to drop."""
        with self._lock:
            held = self._held
            if held is None or held.token.access_token != access_token:
                return True  # already replaced (another thread saw the same 401)
            if self._clock() - held.token.obtained_at < self.reject_cooldown:
                return False
            self._held = None
            self._failure = None
            cache = self._shared_cache()
            if cache is not None:
                self._drop_shared(cache, access_token)
            return True

    # -- renewal (called with self._lock held) -------------------------------------------------

    def _renew(self) -> _Token:
        held, now = self._held, self._clock()
        if held is not None and now < held.refresh_at:
            return held.token  # another thread renewed it while we waited for the lock
        current = held.token if held is not None and now < held.token.expires_at else None
        failure = self._failure
        if failure is not None and now < failure.until:
            if current is not None:
                return current
            raise failure.error.with_traceback(None)
        try:
            token = self._obtain(current)
        except TokenRequestError as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.failure_cooldown
            self._failure = _Failure(self._clock() + wait, exc)
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

    def _refresh_at(self, token: _Token) -> float:
        lifetime = max(token.expires_at - token.obtained_at, 0.0)
        lead = min(self.refresh_margin, lifetime / 4) + self._jitter_fraction * min(self.refresh_jitter, lifetime / 4)
        return token.expires_at - lead

    def _fresh(self, token: _Token | None, current: _Token | None) -> bool:
        return token is not None and token != current and self._clock() < self._refresh_at(token)

    def _obtain(self, current: _Token | None) -> _Token:
        # A refresh ahead of expiry is tried once; with no valid token we retry with backoff.
        attempts = 1 if current is not None else 1 + self.max_retries
        cache = self._shared_cache()
        if cache is None:
            return self._fetch(attempts)
        deadline = time.monotonic() + self._lock_ttl()
        while True:
            token = self._read_shared(cache)
            if token is not None and self._fresh(token, current):
                return token
            if (
                self._cache_call(cache.add, self._cache_key + ".lock", self._owner, int(self._lock_ttl()) + 1)
                is not False
            ):
                return self._fetch_holding_lock(cache, current, attempts)
            if current is not None:
                return current  # another process is refreshing; ours is still valid
            if time.monotonic() >= deadline:
                logger.warning("gave up waiting for the shared token lock; fetching directly")
                return self._fetch(attempts)
            time.sleep(0.05)

    def _fetch_holding_lock(self, cache, current, attempts) -> _Token:
        try:
            token = self._read_shared(cache)
            if token is not None and self._fresh(token, current):
                return token  # the previous holder stored it just before we locked
            token = self._fetch(attempts)
            timeout = max(int(token.expires_at - self._clock()), 1)
            self._cache_call(cache.set, self._cache_key, json.dumps(token.__dict__), timeout)
            return token
        finally:
            lock_key = self._cache_key + ".lock"
            delete = getattr(cache, "delete", None)
            if delete is not None and self._cache_call(cache.get, lock_key) == self._owner:
                self._cache_call(delete, lock_key)

    def _lock_ttl(self) -> float:
        attempts = 1 + self.max_retries
        return attempts * (self.timeout + 1) + self.max_retries * self.max_wait

    # -- shared cache ----------------------------------------------------------------------

    def _shared_cache(self):
        if isinstance(self._cache, str):
            from django.core.cache import caches  # lazy: the module must import without Django

            return caches[self._cache]
        return self._cache

    def _cache_call(self, method, *args):
        # A broken shared cache (Redis down) degrades to per-process tokens, never to errors.
        try:
            return method(*args)
        except Exception as exc:  # noqa: BLE001 -- any backend error
            logger.warning("shared token cache failed (%s); continuing without it", type(exc).__name__)
            return None

    def _read_shared(self, cache) -> _Token | None:
        raw = self._cache_call(cache.get, self._cache_key)
        try:
            data = json.loads(raw)
            return _Token(
                str(data["access_token"]),
                float(data["expires_at"]),
                float(data["obtained_at"]),
                str(data.get("token_type", "Bearer")),
            )
        except (TypeError, ValueError, KeyError):
            return None

    def _drop_shared(self, cache, access_token):
        shared = self._read_shared(cache)
        if shared is not None and shared.access_token == access_token:
            delete = getattr(cache, "delete", None)
            if delete is not None:
                self._cache_call(delete, self._cache_key)
            else:
                self._cache_call(cache.set, self._cache_key, None, 1)

    # -- talking to the issuer ---------------------------------------------------------------

    def _fetch(self, attempts: int) -> _Token:
        for attempt in range(attempts):
            try:
                return self._request_token()
            except IssuerUnavailable as exc:
                wait = exc.retry_after
                if wait is None:
                    wait = random.uniform(0, min(self.backoff * 2**attempt, self.max_wait))  # noqa: S311 -- backoff jitter
                if attempt + 1 >= attempts or wait > self.max_wait:
                    raise
                logger.warning(
                    "token request failed (%s); retry %d of %d in %.2fs", exc, attempt + 1, attempts - 1, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_token(self) -> _Token:
        params = dict(self.extra_params)
        if self.audience is not None:
            params["audience"] = self.audience
        if self.scope:
            params["scope"] = self.scope
        obtained_at = self._clock()  # before the request: never overestimate the lifetime
        try:
            data = self._fetch_token_response(params)
        except requests.RequestException as exc:
            raise IssuerUnavailable(
                f"token endpoint {self.token_url} unreachable ({type(exc).__name__}) for {self._who()}"
            ) from exc
        except ValueError as exc:  # authlib: a 2xx body that is not a JSON object
            raise MalformedTokenResponse(
                f"token endpoint {self.token_url} returned a non-JSON body for {self._who()}"
            ) from exc
        token = self._parse_token(data, obtained_at)
        logger.info("obtained an access token for %s, expires in %ds", self._who(), token.expires_at - obtained_at)
        return token

    def _fetch_token_response(self, params):
        if self._dpop is None:
            return self._session.fetch_token(
                self.token_url, grant_type="client_credentials", timeout=self.timeout, **params
            )
        for attempt in range(2):  # RFC 9449 8: one more try when the issuer asks for a nonce
            headers = {**DEFAULT_HEADERS, "DPoP": self.dpop_proof("POST", self.token_url)}
            try:
                return self._session.fetch_token(
                    self.token_url, grant_type="client_credentials", timeout=self.timeout, headers=headers, **params
                )
            except _NonceRequired as exc:
                if attempt:
                    raise TokenRequestError(str(exc), status=exc.status, error=exc.error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse_token(self, data, obtained_at) -> _Token:
        access_token, expires_in = data.get("access_token"), _positive(data.get("expires_in"))
        problem = None
        if not isinstance(access_token, str) or not access_token:
            problem = "no access_token"
        elif expires_in is None:
            problem = "no positive expires_in"
        elif str(data.get("token_type", "Bearer")).lower() not in self._token_types():
            problem = f"token_type is not {' or '.join(self._token_types())}"
        if problem:
            raise MalformedTokenResponse(f"malformed token response from {self.token_url} for {self._who()}: {problem}")
        token_type = "DPoP" if str(data.get("token_type", "")).lower() == "dpop" else "Bearer"
        if self._dpop is not None and token_type == "Bearer":  # noqa: S105 -- a scheme
            # RFC 9449 5: the issuer chose not to bind it; it can only be sent as a bearer token.
            logger.warning("the issuer returned a bearer token, not a DPoP-bound one, for %s", self._who())
        return _Token(access_token, obtained_at + expires_in, obtained_at, token_type)

    def _token_types(self):
        return ("bearer", "dpop") if self._dpop is not None else ("bearer",)  # what we can send

    def _check_response(self, resp):
        """authlib compliance hook: turn every non-2xx answer into our exception tree."""
        status, body = resp.status_code, _json_object(resp)
        fresh_nonce = self._remember_nonce(self.token_url, resp)
        if 200 <= status < 300 and "error" not in body:
            return resp  # authlib parses it; _parse_token checks what it holds
        error = self._scrub(body["error"]) if isinstance(body.get("error"), str) else None
        where = f"HTTP {status} from {self.token_url} for {self._who()}"
        if error == "use_dpop_nonce" and fresh_nonce:
            raise _NonceRequired(f"the issuer requires a DPoP nonce: {where}", status=status, error=error)
        if status == 429:
            retry_after = _retry_after(resp.headers.get("Retry-After"), self.failure_cooldown)
            raise RateLimited(
                f"rate limited: {where}; Retry-After {retry_after:g}s",
                status=status,
                error=error,
                retry_after=retry_after,
            )
        if status >= 500 or status == 408:
            raise IssuerUnavailable(f"issuer unavailable: {where}", status=status, error=error)
        detail = self._scrub(f"{error or 'error'}: {body.get('error_description') or ''}")
        cls = AccessDenied if status in (401, 403) or error in _DENIED_ERRORS else TokenRequestError
        raise cls(f"token request denied: {where}: {detail}", status=status, error=error)

    def _who(self) -> str:
        return f"client_id={self.client_id!r} audience={self.audience!r}"

    def _scrub(self, text) -> str:
        # The issuer's words go into our messages; never let them echo the secret back.
        text = str(text)
        return (text.replace(self._client_secret, "***") if self._client_secret else text)[:300]

    def _reset_after_fork(self):
        # A requests session's pooled sockets and a lock held by another thread must not
        # cross a fork (gunicorn --preload): the child starts both afresh.
        self._lock = threading.Lock()
        self._owner = uuid.uuid4().hex
        self._session = OAuth2Session(self.client_id, self._client_secret, token_endpoint_auth_method=self.auth_method)
        self._session.register_compliance_hook("access_token_response", self._check_response)


class BearerAuth(AuthBase):
    """``requests`` auth: sends ``Authorization: Bearer`` (or ``DPoP`` with a fresh proof for a
    DPoP-bound token); on a 401 ``invalid_token`` drops the token, fetches a new one and resends
    once; on a 401 ``use_dpop_nonce`` resends once with the nonce (only bodies that can be sent
    twice)."""

    def __init__(self, credentials: ClientCredentials):
        self.credentials = credentials

    def __repr__(self):
        return f"{type(self).__name__}({self.credentials!r})"

    def __call__(self, request):
        self._authorize(request, self.credentials._current())
        if request.body is None or isinstance(request.body, (bytes, str)):
            request.register_hook("response", self._retry_on_invalid_token)
        return request

    def _authorize(self, request, token):
        if token.token_type == "DPoP" and self.credentials._dpop is not None:  # noqa: S105 -- a scheme
            request.headers["Authorization"] = f"DPoP {token.access_token}"
            request.headers["DPoP"] = self.credentials.dpop_proof(request.method, request.url, token.access_token)
        else:
            request.headers["Authorization"] = f"Bearer {token.access_token}"

    def _retry_on_invalid_token(self, response, **kwargs):
        header = response.request.headers.get("Authorization", "")
        challenge = response.headers.get("WWW-Authenticate", "")
        fresh_nonce = self.credentials._remember_nonce(response.request.url, response)
        scheme, _, sent = header.partition(" ")
        # No Authorization header means requests stripped it on a cross-host redirect: never re-add it.
        if response.status_code != 401 or scheme not in ("Bearer", "DPoP") or not sent:
            return response
        if scheme == "DPoP" and fresh_nonce and _USE_DPOP_NONCE.search(challenge):
            return self._resend(response, _Token(sent, math.inf, 0.0, "DPoP"), **kwargs)
        if not _INVALID_TOKEN.match(challenge) or not self.credentials.invalidate(sent):
            return response
        try:
            fresh = self.credentials._current()
        except TokenRequestError as exc:
            logger.warning("could not replace a rejected token: %s", exc)
            return response
        if fresh.access_token == sent:
            return response
        return self._resend(response, fresh, **kwargs)

    def _resend(self, response, token, **kwargs):
        # The same resend as requests' HTTPDigestAuth; connection.send runs no hooks: no loop.
        response.content  # noqa: B018 -- drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)
        retry.prepare_cookies(retry._cookies)
        self._authorize(retry, token)  # a fresh proof: a new jti, the latest nonce (RFC 9449 7.3)
        second = response.connection.send(retry, **kwargs)
        self.credentials._remember_nonce(retry.url, second)
        second.history.append(response)
        second.request = retry
        return second


def _forget_state_on_fork(credentials):
    if hasattr(os, "register_at_fork"):
        ref = weakref.ref(credentials)

        def reset_in_child() -> None:
            alive = ref()
            if alive is not None:
                alive._reset_after_fork()

        os.register_at_fork(after_in_child=reset_in_child)


def _dpop_key(dpop):
    if dpop is False or dpop is None:
        return None
    from .dpop_key import DPoPKey  # only DPoP users pay for importing the proof code

    if isinstance(dpop, DPoPKey):
        return dpop
    return DPoPKey(None if dpop is True else dpop)


def _origin(url) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_token_url(url):
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise ValueError(f"token_url must be https (the client secret travels in it), not {url!r}")


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _positive(value) -> float | None:
    # Some issuers send expires_in as a string; a bool or a non-positive number is not a lifetime.
    try:
        number = float(value) if not isinstance(value, bool) else 0.0
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 1e9 else None


def _json_object(resp) -> dict:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(value, default) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return default
