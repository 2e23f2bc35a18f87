"""JWKSource: the signing keys of one issuer (discovery, refresh rules, stale-if-error, single flight,
sharing through the fleet's cache). Pure: no Django; the shared cache is injected."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InvalidToken, JWKSError, KeysUnavailable
from .events import EventQueue
from .fetch import HTTPFetcher, discover_jwks_uri, discovery_url
from .jwks_shared import SharedKeys
from .keys import KeySet, VerifyKey, describe_keys, parse_jwks

__all__ = ["JWKSource"]

logger = logging.getLogger("drf_m2m_auth.jwks")

_POLL = 0.05  # seconds between shared-cache reads while another process fetches


class JWKSource:
    """The signing keys of one issuer.

    A process memo in front of an optional shared cache (a ``shared.SharedCache``; its side is
    ``jwks_shared.SharedKeys``), so one network fetch serves every worker. Rules:
    refresh when the TTL runs out (Cache-Control max-age clamped to [min_ttl, max_ttl]); on an
    unknown kid refresh at once but at most once per ``cooldown`` (cluster-wide when shared);
    concurrent misses share one fetch; while the issuer is unreachable keep the last good keys
    for ``stale_if_error`` seconds and log once per outage; with no keys at all, retry with a
    short backoff (``cold_retry`` seconds, doubling up to the cooldown). An empty key set, or
    one with no key for the allowed algorithms, counts as "no keys". A process that meets an
    unknown kid while another holds the fetch claim waits (at most ``lock_wait``) for its result,
    then, if that lacks the kid (read before the key was published), fetches once under the cooldown.

    ``on_event(name, **details)``, if given, hears ``"jwks_refreshed"`` (issuer, url, source, keys,
    changed) and ``"jwks_fetch_failed"`` (issuer, url, error, stale); it is called after the
    refresh lock is released, so it may do anything but must not expect to change the outcome.
    """

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        algorithms: Iterable[str] = ("RS256",),
        fetch: Callable[[str], tuple[Any, int | None]] | None = None,
        shared_cache: Any = None,
        clock: Callable[[], float] = time.time,
        default_ttl: float = 600,
        min_ttl: float = 60,
        max_ttl: float = 86400,
        cooldown: float = 30,
        stale_if_error: float = 6 * 3600,
        cold_retry: float = 2,
        lock_wait: float = 5.0,
        on_event: Callable[..., None] | None = None,
    ):
        self.issuer = issuer
        self.configured_jwks_url = jwks_url
        self.jwks_url = jwks_url
        self.algorithms = tuple(algorithms)
        self.fetch = fetch or HTTPFetcher()
        self.clock = clock
        self.default_ttl, self.min_ttl, self.max_ttl = default_ttl, min_ttl, max_ttl
        self.cooldown = cooldown
        self.stale_if_error = stale_if_error
        self.cold_retry = cold_retry
        self.lock_wait = lock_wait
        self.keys: KeySet | None = None
        self.generation = 0  # bumped whenever the set of keys changes
        self.fetched_at = 0.0  # when the current keys left the issuer (wall clock)
        self.expires_at = 0.0  # when to look again (TTL, or the pause after a failed refresh)
        self.fresh_until = 0.0  # fetched_at + TTL: the stale-if-error window starts here
        self.source = "none"  # where the current keys came from: network | shared cache
        self.fetch_count = 0  # JWKS network fetches by this process
        self.discovery_count = 0
        self._lock = threading.Lock()
        self._last_refresh_attempt = -math.inf
        self._last_kid_refresh = -math.inf
        self._next_cold_attempt = 0.0
        self._cold_backoff = cold_retry
        self._outage_logged = False
        self.on_event = on_event
        self._events = EventQueue(lambda: self.on_event, logger, issuer=issuer)  # queued under the lock, sent after it
        # Where the keys are looked up: the configured JWKS URL, else the discovery URL.
        self.origin = jwks_url if jwks_url is not None else discovery_url(self.issuer)
        self.shared = SharedKeys(shared_cache, issuer, self.origin) if shared_cache is not None else None

    # The hot path: a dict lookup when the keys are fresh.
    def get_key(self, kid: str | None, alg: str) -> VerifyKey:
        keys = self.keys
        if keys is None or self.clock() >= self.expires_at:
            keys = self._refresh(reason="ttl")
        key = keys.find(kid, alg)
        if key is not None:
            return key
        # Unknown kid: another process may already hold the rotated set (a cache read, no network)...
        shared = self._from_shared(kid, must_be_newer=True)
        self._events.flush()
        if shared is not None:
            key = shared.find(kid, alg)
            if key is not None:
                return key
        # ...else refetch at once, but at most once per cooldown (RFC 8725 does not bound this; jose does)
        if self._may_refresh_for_unknown_kid():
            keys = self._refresh(reason="unknown_kid", kid=kid)
            key = keys.find(kid, alg)
            if key is not None:
                return key
        elif kid is not None and self.shared is not None and self.shared.fetch_in_flight():
            # Emergency rotation: another process is fetching right now; its result may hold the kid.
            waited = self._wait_for_shared(kid)
            self._events.flush()
            key = waited.find(kid, alg) if waited is not None else None
            if key is not None:
                return key
        if kid is None:
            raise InvalidToken(
                "The token has no kid and the issuer publishes more than one suitable key.",
                reason="kid_required",
                claim="kid",
            )
        raise InvalidToken("The token's key id is not in the issuer's key set.", reason="unknown_kid", claim="kid")

    def refresh_if_due(self) -> KeySet:
        if self.keys is None or self.clock() >= self.expires_at:
            return self._refresh(reason="ttl")
        return self.keys

    def is_current(self, key: VerifyKey) -> bool:
        keys = self.keys
        return keys is not None and keys.contains(key)

    def _may_refresh_for_unknown_kid(self) -> bool:
        return self.clock() - self._last_kid_refresh >= self.cooldown

    def _refresh(self, *, reason: str, kid: str | None = None) -> KeySet:
        seen_generation = self.generation
        attempt_before = self._last_refresh_attempt
        try:
            with self._lock:  # single flight: the threads that waited reuse the winner's result
                if self.generation != seen_generation or self._last_refresh_attempt != attempt_before:
                    if self.keys is not None and (reason != "ttl" or self.clock() < self.expires_at):
                        return self.keys
                return self._refresh_locked(reason, kid)
        finally:
            self._events.flush()

    def refresh_now(self) -> KeySet:
        """Fetch from the issuer now, ignoring the TTL, the cooldown and the shared cache.

        For operators (``m2m_jwks --refresh``), never the request path. A failure keeps the last
        good keys within the stale window, as any refresh does; KeysUnavailable when there are none.
        """
        try:
            with self._lock:
                self._last_refresh_attempt = self.clock()
                return self._fetch_and_install("manual")
        finally:
            self._events.flush()

    def _refresh_locked(self, reason: str, kid: str | None) -> KeySet:
        now = self.clock()
        if self.keys is None and now < self._next_cold_attempt:
            raise self._unavailable()
        if reason == "unknown_kid" and now - self._last_kid_refresh < self.cooldown and self.keys is not None:
            return self.keys
        fleet_keys = self._from_shared(kid if reason == "unknown_kid" else None, must_be_newer=reason != "ttl")
        if fleet_keys is not None:
            return fleet_keys
        self._last_refresh_attempt = now
        if reason == "unknown_kid":
            self._last_kid_refresh = now
        # The fetch claim is taken before the cooldown claim, so a process that meets an unknown
        # kid always sees a fetch in flight elsewhere (emergency rotation) and waits for its result.
        shared, owner = self.shared, uuid.uuid4().hex
        if shared is None:
            return self._fetch_and_install(reason)
        claimed = shared.claim_fetch(self.lock_wait, owner)
        if claimed is False and (self.keys is None or reason == "unknown_kid"):
            waited = self._wait_for_shared(kid if reason == "unknown_kid" else None)  # bounded by lock_wait
            if waited is not None:
                return waited
            if reason == "unknown_kid" and self.keys is not None and not shared.fetch_in_flight():
                claimed = shared.claim_fetch(self.lock_wait, owner)  # it read the set before the kid
        if claimed is False and (self.keys is None or reason == "unknown_kid"):
            if self.keys is not None:
                return self.keys
            if not shared.fetch_in_flight():  # that fetch failed: the issuer is down for us too
                return self._on_fetch_error(JWKSError("another process's JWKS fetch failed"), now)
        try:
            # The cooldown bounds refreshes caused by unknown kids (attacker-controlled), cluster-wide.
            if reason == "unknown_kid" and shared.claim_kid_refresh(self.cooldown) is False:
                if self.keys is not None:
                    return self.keys
            return self._fetch_and_install(reason)
        finally:
            if claimed:
                shared.release_fetch(owner)

    def _fetch_and_install(self, reason: str) -> KeySet:
        now = self.clock()
        try:
            doc, max_age = self._fetch_document()
            keyset = parse_jwks(doc, self.algorithms)
            if not keyset.all:
                # "No keys": an empty set would otherwise turn every token into a 401 for a whole
                # cooldown; as an outage it is a 503 retried on the short cold-start schedule.
                raise JWKSError(
                    f"the JWKS at {self.jwks_url} has no key for the allowed algorithms "
                    f"({', '.join(self.algorithms)}); it offers: {describe_keys(doc)}"
                )
        except (JWKSError, ValueError, TypeError, KeyError, RecursionError) as exc:
            return self._on_fetch_error(exc, now)
        ttl = self._ttl(max_age)
        generation = self.generation
        self._install(keyset, fetched_at=now, ttl=ttl, source="network")
        self._events.add(
            "jwks_refreshed",
            url=self.jwks_url,
            source="network",
            keys=len(keyset.all),
            changed=self.generation != generation,
        )
        if self.shared is not None:
            self.shared.write(doc, fetched_at=now, ttl=ttl, keep_for=self.stale_if_error + ttl)
        if self._outage_logged:
            logger.warning("JWKS for issuer %s reachable again at %s", self.issuer, self.jwks_url)
        self._outage_logged = False
        self._cold_backoff = self.cold_retry
        logger.debug("JWKS fetched for %s (%s): %d keys, ttl %ss", self.issuer, reason, len(keyset.all), ttl)
        return keyset

    def _on_fetch_error(self, exc: Exception, now: float) -> KeySet:
        self._events.add(
            "jwks_fetch_failed",
            url=self.jwks_url or discovery_url(self.issuer),
            error=str(exc),
            stale=self.keys is not None and now < self.fresh_until + self.stale_if_error,
        )
        if not self._outage_logged:
            logger.warning(
                "Cannot refresh JWKS for issuer %s from %s: %s", self.issuer, self.jwks_url or "(discovery)", exc
            )
            self._outage_logged = True
        if self.configured_jwks_url is None:
            self.jwks_url = None  # re-discover next time: the issuer may have moved its jwks_uri
        if self.keys is not None and now < self.fresh_until + self.stale_if_error:
            # stale-if-error: keep serving the last good keys; try the issuer again after a pause
            self.expires_at = now + min(self.cooldown, self.min_ttl)
            return self.keys
        if self.keys is not None:
            logger.error("JWKS for issuer %s is stale beyond %ss: dropping its keys", self.issuer, self.stale_if_error)
        self.keys = None
        self._next_cold_attempt = now + self._cold_backoff
        retry = self._cold_backoff
        self._cold_backoff = min(self._cold_backoff * 2, max(self.cooldown, self.cold_retry))
        raise KeysUnavailable(
            "No signing keys could be obtained for the token issuer.", retry_after=max(1, math.ceil(retry))
        ) from exc

    def _unavailable(self) -> KeysUnavailable:
        return KeysUnavailable(
            "No signing keys could be obtained for the token issuer.",
            retry_after=max(1, math.ceil(self._next_cold_attempt - self.clock())),
        )

    def _install(self, keyset: KeySet, *, fetched_at: float, ttl: float, source: str) -> KeySet:
        if self.keys is not None and self.keys.fingerprint == keyset.fingerprint:
            keyset = self.keys  # same keys: keep the objects so verified-token cache entries stay valid
        else:
            self.keys = keyset
            self.generation += 1
        self.fetched_at = fetched_at
        self.expires_at = self.fresh_until = fetched_at + ttl
        self.source = source
        return keyset

    def _ttl(self, max_age: int | None) -> float:
        ttl = self.default_ttl if max_age is None else max_age
        return float(min(max(ttl, self.min_ttl), self.max_ttl))

    def _fetch_document(self) -> tuple[Any, int | None]:
        if self.jwks_url is None:
            self.discovery_count += 1
            self.jwks_url = discover_jwks_uri(self.fetch, self.issuer)
        self.fetch_count += 1
        return self.fetch(self.jwks_url)

    # --- shared cache (cross-process) ---------------------------------------------------------

    def _from_shared(self, kid: str | None, *, must_be_newer: bool) -> KeySet | None:
        """Install the fleet's copy of the keys if it is fresh (and newer / holds ``kid`` when asked)."""
        if self.shared is None:
            return None
        found = self.shared.read(
            self.algorithms, now=self.clock(), newer_than=self.fetched_at if must_be_newer else None, kid=kid
        )
        if found is None:
            return None
        keyset, fetched_at, ttl = found
        generation = self.generation
        installed = self._install(keyset, fetched_at=fetched_at, ttl=ttl, source="shared cache")
        self._events.add(
            "jwks_refreshed",
            url=self.jwks_url or self.origin,
            source="shared cache",
            keys=len(installed.all),
            changed=self.generation != generation,
        )
        return installed

    def _wait_for_shared(self, kid: str | None) -> KeySet | None:
        """Poll the shared cache, at most ``lock_wait`` seconds, for the result of another process's fetch."""
        deadline = time.monotonic() + self.lock_wait
        while True:
            keyset = self._from_shared(kid, must_be_newer=kid is not None)
            if keyset is not None:
                return keyset
            if time.monotonic() >= deadline:
                return None
            if self.shared is None or not self.shared.fetch_in_flight():  # it ended without what we need
                return self._from_shared(kid, must_be_newer=kid is not None)
            time.sleep(_POLL)

    def clear(self) -> None:
        with self._lock:
            self.keys = None
            self.expires_at = 0.0
            self._last_refresh_attempt = -math.inf
            self._last_kid_refresh = -math.inf
            self._next_cold_attempt = 0.0
