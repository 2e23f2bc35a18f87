"""JWKS per issuer: discovery, bounded fetch, parse (joserfc), shared cache, refresh rules."""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidToken, JWKSError, KeysUnavailable
from .jose import ALG_KEY_TYPES, MIN_RSA_BITS, json_loads

logger = logging.getLogger("drf_m2m_auth.jwks")


@dataclass(frozen=True, eq=False)
class VerifyKey:
    """One public signing key, imported once per fetch; the hot path only uses ``public_key``."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own "alg", if it declared one
    algorithms: frozenset[str]  # the configured algorithms this key may verify
    public_key: Any
    thumbprint: str = ""
    use: str | None = None  # the JWK's "use" as published ("sig" or absent), for operators' tools

    def allows(self, alg: str) -> bool:
        return alg in self.algorithms


@dataclass
class KeySet:
    """Parsed keys of one JWKS document, looked up by kid."""

    by_kid: dict[str, list[VerifyKey]] = field(default_factory=dict)
    all: list[VerifyKey] = field(default_factory=list)
    fingerprint: str = ""

    def find(self, kid: str | None, alg: str) -> VerifyKey | None:
        if kid is None:
            # RFC 7515 4.1.4: kid is optional; only unambiguous when exactly one key fits the alg.
            fits = [k for k in self.all if k.allows(alg)]
            return fits[0] if len(fits) == 1 else None
        for key in self.by_kid.get(kid, ()):
            if key.allows(alg):
                return key
        return None

    def contains(self, key: VerifyKey) -> bool:
        return any(k is key for k in self.by_kid.get(key.kid, ())) if key.kid is not None else key in self.all


def _key_algorithms(jwk: Mapping[str, Any], algorithms: Iterable[str]) -> frozenset[str]:
    kty, crv, declared = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    fits = set()
    for alg in algorithms:
        spec = ALG_KEY_TYPES.get(alg)
        if spec is None or spec[0] != kty or (spec[1] is not None and crv not in spec[1]):
            continue
        if declared is not None and declared != alg and not (declared == "EdDSA" and alg == "Ed25519"):
            continue
        fits.add(alg)
    return frozenset(fits)


def _rsa_bits(n: Any) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return 0


def parse_jwks(doc: Any, algorithms: Iterable[str]) -> KeySet:
    """Parse a JWKS document, skipping (not failing on) keys that cannot or must not be used.

    Skipped: ``use`` other than ``sig``; ``key_ops`` without ``verify``; a ``kty``/``crv``/``alg``
    that fits none of the allowed algorithms (so an ``oct`` key can never verify anything: no
    HS256-with-public-key confusion); RSA keys under 2048 bits; anything joserfc cannot import.
    """
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JWKSError("JWKS document has no 'keys' array")
    algorithms = tuple(algorithms)
    importers: dict[str, Any] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    keyset = KeySet()
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        usable = _key_algorithms(jwk, algorithms)
        importer = importers.get(jwk.get("kty"))  # type: ignore[arg-type]
        if not usable or importer is None:
            continue
        public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")}
        if jwk["kty"] == "RSA" and _rsa_bits(jwk.get("n")) < MIN_RSA_BITS:
            continue  # NIST SP 800-131A: too short to trust (checked before joserfc warns about it)
        try:
            key = importer.import_key(public)
            native = key.public_key
            thumbprint = key.thumbprint()
        except Exception as exc:  # a bad key is skipped, not the whole set
            logger.warning("Skipping unusable JWK kid=%r: %s", kid, type(exc).__name__)
            continue
        vk = VerifyKey(
            kid=kid,
            kty=jwk["kty"],
            crv=jwk.get("crv"),
            alg=jwk.get("alg"),
            algorithms=usable,
            public_key=native,
            thumbprint=thumbprint,
            use=jwk.get("use"),
        )
        keyset.all.append(vk)
        if kid is not None:
            keyset.by_kid.setdefault(kid, []).append(vk)
    keyset.fingerprint = "|".join(
        sorted(f"{k.kid}:{k.thumbprint}:{','.join(sorted(k.algorithms))}" for k in keyset.all)
    )
    return keyset


# --- fetching -------------------------------------------------------------------------------------

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)


def parse_max_age(cache_control: str | None) -> int | None:
    if not cache_control or "no-store" in cache_control.lower():
        return None if not cache_control else 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, insecure_hosts: Iterable[str] = ()) -> None:
    """https only, except loopback hosts (sidecars, tests) and hosts explicitly opted in."""
    if not isinstance(url, str):
        raise JWKSError("URL is not a string")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise JWKSError(f"not an absolute http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise JWKSError("URL must not carry credentials")
    if parts.scheme == "http" and not (is_loopback_host(parts.hostname) or parts.hostname in set(insecure_hosts)):
        raise JWKSError(f"refusing plain http for non-loopback host {parts.hostname!r} (https required)")


class HTTPFetcher:
    """GET a JSON document with a total deadline and a size cap; returns (document, max_age)."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 512 * 1024,
        insecure_hosts: Iterable[str] = (),
        session: Any = None,
    ):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.insecure_hosts = tuple(insecure_hosts)
        self.session = session

    def __call__(self, url: str) -> tuple[Any, int | None]:
        import requests

        check_url(url, self.insecure_hosts)
        getter = self.session or requests
        deadline = time.monotonic() + self.timeout
        try:
            with getter.get(
                url, timeout=self.timeout, stream=True, allow_redirects=False, headers={"Accept": "application/json"}
            ) as resp:
                if resp.status_code != 200:
                    raise JWKSError(f"HTTP {resp.status_code} from {url}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise JWKSError(f"response from {url} larger than {self.max_bytes} bytes")
                body = bytearray()
                for chunk in resp.iter_content(16384):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise JWKSError(f"response from {url} larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise JWKSError(f"timed out reading {url} after {self.timeout} s")
                max_age = parse_max_age(resp.headers.get("Cache-Control"))
        except requests.RequestException as exc:
            raise JWKSError(f"cannot fetch {url}: {type(exc).__name__}") from exc
        try:
            doc = json_loads(bytes(body))
        except (ValueError, RecursionError) as exc:
            raise JWKSError(f"response from {url} is not JSON") from exc
        return doc, max_age


# --- one issuer's keys ----------------------------------------------------------------------------


class JWKSource:
    """The signing keys of one issuer.

    A process memo in front of an optional shared cache (any object with Django's cache
    get/set/add API), so one network fetch serves every worker. Rules (DESIGN.md "Keys"):
    refresh when the TTL runs out (Cache-Control max-age clamped to [min_ttl, max_ttl]); on an
    unknown kid refresh at once but at most once per ``cooldown`` (cluster-wide when shared);
    concurrent misses share one fetch; while the issuer is unreachable keep the last good keys
    for ``stale_if_error`` seconds and log once per outage; with no keys at all, retry with a
    short backoff (``cold_retry`` seconds, doubling up to the cooldown).

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
        self.shared_cache = shared_cache
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
        self._events: list[tuple[str, dict[str, Any]]] = []  # queued under the lock, sent after it
        key = re.sub(r"[^A-Za-z0-9_.:-]", "_", issuer)[:150]
        self._cache_key = f"drf_m2m_auth:jwks:{key}"
        self._cooldown_key = f"drf_m2m_auth:jwks-kid-refresh:{key}"
        self._cold_key = f"drf_m2m_auth:jwks-cold-fetch:{key}"

    # The hot path: a dict lookup when the keys are fresh.
    def get_key(self, kid: str | None, alg: str) -> VerifyKey:
        keys = self.keys
        if keys is None or self.clock() >= self.expires_at:
            keys = self._refresh(reason="ttl")
        key = keys.find(kid, alg)
        if key is not None:
            return key
        # Unknown kid: another process may already hold the rotated set (a cache read, no network)...
        shared = self._from_shared(kid, must_be_newer=True) if self.shared_cache is not None else None
        if self._events:
            self._flush_events()
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
            if self._events:
                self._flush_events()

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
            if self._events:
                self._flush_events()

    def _event(self, name: str, **details: Any) -> None:
        if self.on_event is not None:
            self._events.append((name, {"issuer": self.issuer, **details}))

    def _flush_events(self) -> None:
        while self._events:
            try:
                name, details = self._events.pop(0)
            except IndexError:  # another thread sent it first
                return
            try:
                self.on_event(name, **details)  # type: ignore[misc]
            except Exception:  # a broken receiver must never fail a request
                logger.exception("JWKS %s receiver failed for issuer %s", name, self.issuer)

    def _refresh_locked(self, reason: str, kid: str | None) -> KeySet:
        now = self.clock()
        if self.keys is None and now < self._next_cold_attempt:
            raise self._unavailable()
        if reason == "unknown_kid" and now - self._last_kid_refresh < self.cooldown and self.keys is not None:
            return self.keys
        shared = self._from_shared(kid if reason == "unknown_kid" else None, must_be_newer=reason != "ttl")
        if shared is not None:
            return shared
        self._last_refresh_attempt = now
        if reason == "unknown_kid":
            # The cooldown bounds refreshes caused by unknown kids (attacker-controlled), cluster-wide.
            self._last_kid_refresh = now
            if not self._claim(self._cooldown_key, self.cooldown):
                return self.keys if self.keys is not None else self._fetch_and_install(reason)
        if self.keys is None and self.shared_cache is not None and not self._claim(self._cold_key, self.lock_wait):
            waited = self._wait_for_shared()  # a cold fleet: one process fetches, the others wait for it
            if waited is not None:
                return waited
        return self._fetch_and_install(reason)

    def _fetch_and_install(self, reason: str) -> KeySet:
        now = self.clock()
        try:
            doc, max_age = self._fetch_document()
            keyset = parse_jwks(doc, self.algorithms)
        except (JWKSError, ValueError, TypeError, KeyError) as exc:
            return self._on_fetch_error(exc, now)
        ttl = self._ttl(max_age)
        generation = self.generation
        self._install(keyset, fetched_at=now, ttl=ttl, source="network")
        self._event(
            "jwks_refreshed",
            url=self.jwks_url,
            source="network",
            keys=len(keyset.all),
            changed=self.generation != generation,
        )
        if self.shared_cache is not None:
            entry = {"jwks": doc, "fetched_at": now, "ttl": ttl, "jwks_uri": self.jwks_url}
            self._cache_call("set", self._cache_key, entry, int(self.stale_if_error + ttl))
        if self._outage_logged:
            logger.warning("JWKS for issuer %s reachable again at %s", self.issuer, self.jwks_url)
        self._outage_logged = False
        self._cold_backoff = self.cold_retry
        logger.debug("JWKS fetched for %s (%s): %d keys, ttl %ss", self.issuer, reason, len(keyset.all), ttl)
        return keyset

    def _on_fetch_error(self, exc: Exception, now: float) -> KeySet:
        self._event(
            "jwks_fetch_failed",
            url=self.jwks_url or self._discovery_url(),
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
            self.jwks_url = self._discover()
        self.fetch_count += 1
        return self.fetch(self.jwks_url)

    def _discover(self) -> str:
        """OIDC discovery; the document's issuer must equal ours exactly (RFC 8414 3.3)."""
        url = self._discovery_url()
        self.discovery_count += 1
        doc, _ = self.fetch(url)
        if not isinstance(doc, dict):
            raise JWKSError(f"discovery document at {url} is not a JSON object")
        if doc.get("issuer") != self.issuer:
            raise JWKSError(
                f"discovery document at {url} names issuer {doc.get('issuer')!r}, expected exactly {self.issuer!r}"
            )
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise JWKSError(f"discovery document at {url} has no jwks_uri")
        return jwks_uri

    def _discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # --- shared cache (cross-process) ---------------------------------------------------------

    def _cache_call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.shared_cache, method)(*args)
        except Exception as exc:  # a cache outage must never fail a request
            logger.warning("Shared cache %s failed for JWKS of %s: %s", method, self.issuer, type(exc).__name__)
            return None

    def _from_shared(self, kid: str | None, *, must_be_newer: bool) -> KeySet | None:
        if self.shared_cache is None:
            return None
        entry = self._cache_call("get", self._cache_key)
        if not isinstance(entry, dict):
            return None
        try:
            fetched_at, ttl = float(entry["fetched_at"]), float(entry["ttl"])
            now = self.clock()
            if now >= fetched_at + ttl or (must_be_newer and fetched_at <= self.fetched_at):
                return None
            keyset = parse_jwks(entry["jwks"], self.algorithms)
        except (JWKSError, ValueError, TypeError, KeyError):
            return None
        if kid is not None and kid not in keyset.by_kid:
            return None
        if self.jwks_url is None and isinstance(entry.get("jwks_uri"), str):
            self.jwks_url = entry["jwks_uri"]
        generation = self.generation
        installed = self._install(keyset, fetched_at=fetched_at, ttl=ttl, source="shared cache")
        self._event(
            "jwks_refreshed",
            url=self.jwks_url,
            source="shared cache",
            keys=len(installed.all),
            changed=self.generation != generation,
        )
        return installed

    def _claim(self, key: str, seconds: float) -> bool:
        """True for the one process (sharing the cache) that may go to the network now."""
        if self.shared_cache is None:
            return True
        token = uuid.uuid4().hex
        added = self._cache_call("add", key, token, max(1, int(math.ceil(seconds))))
        if added is None:
            return True  # cache unreachable: fetch ourselves rather than wait for nobody
        if not added:
            return False
        # File and some database caches implement add() as check-then-set, so two processes can
        # both "win"; after a moment only the last writer's token remains, and only it proceeds.
        time.sleep(0.02)
        return self._cache_call("get", key) in (token, None)

    def _wait_for_shared(self) -> KeySet | None:
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            time.sleep(0.05)
            keyset = self._from_shared(None, must_be_newer=False)
            if keyset is not None:
                return keyset
        return None

    def clear(self) -> None:
        with self._lock:
            self.keys = None
            self.expires_at = 0.0
            self._last_refresh_attempt = -math.inf
            self._last_kid_refresh = -math.inf
            self._next_cold_attempt = 0.0


class KeyRing:
    """Key sources for every configured issuer."""

    def __init__(self, sources: Mapping[str, JWKSource]):
        self.sources = dict(sources)

    def source(self, issuer: str) -> JWKSource:
        return self.sources[issuer]

    def get_key(self, issuer: str, kid: str | None, alg: str) -> VerifyKey:
        return self.sources[issuer].get_key(kid, alg)

    def clear(self) -> None:
        for source in self.sources.values():
            source.clear()
