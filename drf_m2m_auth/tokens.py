"""verify(raw) -> AccessToken: RFC 8725 / RFC 9068 checks on a JWS access token, with a verified-token cache."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature

from .errors import InvalidToken
from .jose import SIGNATURE_VERIFIERS, b64url_decode, json_object
from .jwks import JWKSource
from .principal import AccessToken, ServiceClient
from .scopes import DEFAULT_SCOPE_CLAIMS, scopes_from_claims
from .token_rules import check_claims, check_header
from .trust import IssuerTrust
from .verified_cache import CacheEntry, VerifiedTokenCache

_sha256 = hashlib.sha256


class TokenVerifier:
    """Verifies access tokens for a fixed configuration; one instance per process (see conf.py).

    ``trusts`` are the trusted issuers (IssuerTrust): a token's ``iss`` picks one before any key is
    fetched, then only that issuer's JWKS, algorithms, audiences, leeway, typ rule, scope claims and
    client-id claims apply. (``sources`` + ``audiences`` + ... is the older form: every issuer with
    the same rules.) Every request re-checks exp and nbf (with the issuer's leeway); a cache hit
    skips only the parsing and the signature, and only while the signing key is still in the
    issuer's JWKS. Failures are never cached.
    """

    def __init__(
        self,
        *,
        trusts: Iterable[IssuerTrust] | None = None,
        sources: dict[str, JWKSource] | None = None,
        audiences: Iterable[str] = (),
        algorithms: Iterable[str] = ("RS256",),
        leeway: float = 0,
        scope_claims: Iterable[str] = DEFAULT_SCOPE_CLAIMS,
        max_token_bytes: int = 8192,
        require_at_jwt: bool = False,
        cache_size: int = 10000,
        clock: Callable[[], float] = time.time,
    ):
        if trusts is None:
            audiences, algorithms, scope_claims = tuple(audiences), tuple(algorithms), tuple(scope_claims)
            trusts = [
                IssuerTrust(
                    issuer,
                    source,
                    audiences=audiences,
                    algorithms=algorithms,
                    leeway=leeway,
                    scope_claims=scope_claims,
                    require_at_jwt=require_at_jwt,
                )
                for issuer, source in (sources or {}).items()
            ]
        self.trust_list: tuple[IssuerTrust, ...] = tuple(trusts)
        # every exact iss (issuers and aliases) -> its trust; a token's iss is looked up here only
        self.trusts: dict[str, IssuerTrust] = {iss: t for t in self.trust_list for iss in t.issuers}
        self.sources: dict[str, JWKSource] = {iss: t.source for iss, t in self.trusts.items()}
        self.max_token_bytes = max_token_bytes
        self.cache_size = cache_size
        self.clock = clock
        self.verified = VerifiedTokenCache(cache_size)
        self._cache = self.verified.entries  # the hot path reads the dict itself
        self._scope_memo: dict[tuple, frozenset[str]] = {}

    def _only(self) -> IssuerTrust:
        if len(self.trust_list) != 1:
            raise AttributeError("several issuers are trusted: read verifier.trusts[iss] for one issuer's rules")
        return self.trust_list[0]

    # One-issuer conveniences (tools, benchmarks): the single trusted issuer's rules.
    audiences = property(lambda self: self._only().audiences)
    algorithms = property(lambda self: self._only().algorithms)
    leeway = property(lambda self: self._only().leeway)
    scope_claims = property(lambda self: self._only().scope_claims)
    accepted_types = property(lambda self: self._only().accepted_types)

    # --- the per-request entry points --------------------------------------------------------

    def verify(self, raw: str) -> AccessToken:
        return self.verify_principal(raw)[1]

    def verify_principal(self, raw: str) -> tuple[ServiceClient, AccessToken]:
        """(ServiceClient, AccessToken) for a raw JWT, or InvalidToken / KeysUnavailable."""
        if type(raw) is not str:
            raise InvalidToken("The access token is not a string.", reason="malformed")
        if len(raw) > self.max_token_bytes:  # size cap before any parsing or hashing
            raise InvalidToken("The access token is too large.", reason="too_large")
        try:
            data = raw.encode()  # no error handler named: CPython's fast path, ~30 ns less per call
        except UnicodeEncodeError:  # a lone surrogate: still hashed, and refused as malformed later
            data = raw.encode("utf-8", "surrogatepass")
        digest = _sha256(data).digest()
        entry = self._cache.get(digest)
        if entry is not None:
            # The hot path: no parsing, no crypto; exp and nbf (with leeway) still checked.
            now = self.clock()
            source = entry.source
            if (
                entry.not_before <= now < entry.not_after
                and now < source.expires_at
                and entry.generation == source.generation
            ):
                return entry.pair
            if now >= source.expires_at:
                source.refresh_if_due()  # the JWKS TTL ran out: a retired key must stop working
            if entry.not_before <= now < entry.not_after and (
                entry.generation == source.generation or self._key_still_published(entry)
            ):
                return entry.pair
            self._cache.pop(digest, None)  # expired, or its key left the JWKS: verify afresh
        return self._verify_uncached(raw, digest)

    def _key_still_published(self, entry: CacheEntry) -> bool:
        if entry.source.is_current(entry.key):
            entry.generation = entry.source.generation
            return True
        return False

    # --- full verification --------------------------------------------------------------------

    def _verify_uncached(self, raw: str, digest: bytes) -> tuple[ServiceClient, AccessToken]:
        try:
            header_b64, payload_b64, signature_b64 = raw.split(".")
        except ValueError:
            raise InvalidToken(
                "The access token is not a JWS in compact form (three segments).", reason="malformed"
            ) from None
        try:
            header = json_object(b64url_decode(header_b64))
            claims = json_object(b64url_decode(payload_b64))
            signature = b64url_decode(signature_b64)
        except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
            raise InvalidToken("The access token is not valid base64url-encoded JSON.", reason="malformed") from exc

        issuer = claims.get("iss")
        trust = self.trusts.get(issuer) if type(issuer) is str else None
        if trust is None:
            # Before any key is fetched: iss only picks which allow-listed issuer's rules and JWKS apply.
            raise InvalidToken(
                "The token was issued by an issuer this API does not trust.", reason="bad_issuer", claim="iss"
            )
        alg, kid = check_header(trust, header)
        source = trust.source
        key = source.get_key(kid, alg)
        try:
            SIGNATURE_VERIFIERS[alg](key.public_key, signature, raw[: len(header_b64) + 1 + len(payload_b64)].encode())
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise InvalidToken("The token signature is invalid.", reason="bad_signature") from exc

        exp, nbf, client_id = check_claims(trust, claims, self.clock())
        scopes = self._scopes(trust.scope_claims, claims)
        client_id = client_id if type(client_id) is str else ""
        token = AccessToken(claims, scopes, digest=digest, kid=kid, issuer=trust.issuer, client_id=client_id)
        client = ServiceClient.from_token(token)
        self.verified.remember(digest, CacheEntry(token, client, exp, nbf, trust.leeway, key, source), self.clock())
        return client, token

    def _check_header(self, trust: IssuerTrust, header: dict[str, Any]) -> tuple[str, str | None]:
        """HEADER_RULES in order (``trust``'s rules); the first failure is raised. Returns (alg, kid)."""
        return check_header(trust, header)

    def _check_claims(self, trust: IssuerTrust, claims: dict[str, Any]) -> tuple[float, float]:
        """CLAIM_RULES in order (``trust``'s rules); the first failure is raised. Returns (exp, nbf)."""
        return check_claims(trust, claims, self.clock())[:2]

    def _scopes(self, scope_claims: tuple[str, ...], claims: dict[str, Any]) -> frozenset[str]:
        # Tokens of one client carry the same scope string: share one frozenset between them
        # (a cached token costs memory, and a cache of 10,000 distinct sets costs cache misses).
        try:
            key = (scope_claims, *map(claims.get, scope_claims))  # map: no generator frame per claim
            scopes = self._scope_memo.get(key)
        except TypeError:  # an array claim (scp, permissions): not hashable, computed each time
            return scopes_from_claims(claims, scope_claims)
        if scopes is None:
            scopes = scopes_from_claims(claims, scope_claims)
            if len(self._scope_memo) >= 1024:
                self._scope_memo.clear()
            self._scope_memo[key] = scopes
        return scopes


__all__ = ["TokenVerifier"]
