"""verify(raw) -> AccessToken: RFC 8725 / RFC 9068 checks on a JWS access token, with a verified-token cache."""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from .errors import InvalidToken
from .jose import SIGNATURE_VERIFIERS, b64url_decode, is_numeric_date, json_object
from .jwks import JWKSource
from .principal import AccessToken, ServiceClient, client_id_from_claims
from .scopes import DEFAULT_SCOPE_CLAIMS, scopes_from_claims
from .verified_cache import CacheEntry, VerifiedTokenCache

# RFC 9068 2.1 / RFC 8725 3.11: explicit typing. Media types compare case-insensitively and may
# omit the "application/" prefix (RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
ACCEPTED_TYPES = ACCESS_TOKEN_TYPES | {"jwt", "application/jwt"}
# Header parameters whose meaning we implement; anything listed in "crit" must be one of these.
UNDERSTOOD_CRIT: frozenset[str] = frozenset()
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")

_sha256 = hashlib.sha256


def _fail(description: str, reason: str, claim: str | None = None) -> InvalidToken:
    return InvalidToken(description, reason=reason, claim=claim)


# --- the rules: each check(verifier, header_or_claims, now) raises InvalidToken or returns None ---------


@dataclass(frozen=True)
class Rule:
    """One header or claim rule: ``check`` raises InvalidToken (with ``reason``) or returns None.

    A rule only judges what it names: when the member it reads is absent or of the wrong type and
    another rule owns that failure, it passes, so diagnostics can run every rule and report each
    problem once.
    """

    name: str
    check: Callable[[TokenVerifier, dict[str, Any], float], None]
    reason: str


def _alg_allowed(v: TokenVerifier, header: dict[str, Any], now: float) -> None:
    alg = header.get("alg")
    # RFC 8725 3.1: an allow-list; "none" and HS* can never be in it (see jose.ALG_KEY_TYPES).
    if type(alg) is not str or alg not in v.algorithms:
        raise _fail("The token's signing algorithm is not allowed.", "alg_not_allowed", "alg")


def _crit_understood(v: TokenVerifier, header: dict[str, Any], now: float) -> None:
    if "crit" in header:
        crit = header["crit"]
        if type(crit) is not list or not crit or any(type(c) is not str or c not in UNDERSTOOD_CRIT for c in crit):
            raise _fail(
                "The token has critical header parameters this API does not understand.", "crit_unsupported", "crit"
            )


def _typ_accepted(v: TokenVerifier, header: dict[str, Any], now: float) -> None:
    typ = header.get("typ")
    if typ is None:
        if v.accepted_types is ACCESS_TOKEN_TYPES:
            raise _fail("The token must be typed at+jwt (RFC 9068).", "bad_typ", "typ")
    elif type(typ) is not str or typ.lower() not in v.accepted_types:
        # RFC 8725 3.11: a logout+jwt or id_token-like JWT must not pass as an access token.
        raise _fail("The token's typ is not an access token type.", "bad_typ", "typ")


def _kid_string(v: TokenVerifier, header: dict[str, Any], now: float) -> None:
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        raise _fail("The token's kid is not a string.", "malformed", "kid")
    # jku, x5u, jwk and x5c are deliberately never read: keys come only from the configured JWKS.


HEADER_RULES: tuple[Rule, ...] = (
    Rule("alg", _alg_allowed, "alg_not_allowed"),
    Rule("crit", _crit_understood, "crit_unsupported"),
    Rule("typ", _typ_accepted, "bad_typ"),
    Rule("kid", _kid_string, "malformed"),
)


def _required(name: str) -> Callable[[TokenVerifier, dict[str, Any], float], None]:
    def check(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
        if name not in claims:
            raise _fail(f"The token has no {name} claim.", "missing_claim", name)

    return check


def _numeric(name: str) -> Callable[[TokenVerifier, dict[str, Any], float], None]:
    def check(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
        # bool is an int in Python but not a NumericDate; NaN, inf and 1e30 are not dates either.
        if name in claims and not is_numeric_date(claims[name]):
            raise _fail(f"The {name} claim is not a valid NumericDate.", "bad_claim", name)

    return check


def _date(claims: dict[str, Any], name: str) -> float | None:
    value: Any = claims.get(name)
    return float(value) if is_numeric_date(value) else None


def _not_expired(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    exp = _date(claims, "exp")
    if exp is not None and now >= exp + v.leeway:
        raise _fail("The token has expired.", "expired", "exp")


def _not_issued_in_future(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    iat = _date(claims, "iat")
    if iat is not None and iat > now + v.leeway:
        raise _fail("The token was issued in the future (check clock skew / LEEWAY).", "iat_in_future", "iat")


def _valid_yet(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    nbf = _date(claims, "nbf")
    if nbf is not None and nbf > now + v.leeway:
        raise _fail("The token is not valid yet.", "not_yet_valid", "nbf")


def _audience(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    if "aud" not in claims:
        return
    aud = claims["aud"]
    if type(aud) is str:
        ok = aud in v.audiences
    elif type(aud) is list and aud and all(type(a) is str for a in aud):
        ok = not v.audiences.isdisjoint(aud)
    else:
        ok = False
    if not ok:
        raise _fail("The token is not meant for this API (aud).", "bad_audience", "aud")


def _subject(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    if "sub" in claims and (type(claims["sub"]) is not str or not claims["sub"].strip()):
        raise _fail("The token's sub is not a non-empty string.", "bad_claim", "sub")


def _string(name: str) -> Callable[[TokenVerifier, dict[str, Any], float], None]:
    def check(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
        if name in claims and type(claims[name]) is not str:
            raise _fail(f"The token's {name} is not a string.", "bad_claim", name)

    return check


CONFIRMATION_METHODS = ("jkt", "x5t#S256")  # RFC 9449 6.1, RFC 8705 3.1


def _confirmation(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    if "cnf" not in claims:
        return
    cnf = claims["cnf"]
    # RFC 7800 3.1: a bound token whose binding cannot be checked must not pass as a bearer token.
    if type(cnf) is not dict or not any(m in cnf for m in CONFIRMATION_METHODS):
        raise _fail("The token's cnf has no confirmation method this API can check (jkt, x5t#S256).", "bad_cnf", "cnf")
    for method in CONFIRMATION_METHODS:
        if method in cnf and (type(cnf[method]) is not str or not cnf[method]):
            raise _fail(f"The token's cnf {method} is not a string.", "bad_cnf", "cnf")


_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _client_id_printable(v: TokenVerifier, claims: dict[str, Any], now: float) -> None:
    # A client id names grants, revocations and log lines: a newline can forge an audit line, a
    # bidi control can make one id look like another. Refuse control, format and line/paragraph
    # separator characters (Cc, Cf, Zl, Zp) outright.
    client_id = client_id_from_claims(claims)
    if client_id and not client_id.isprintable() and any(unicodedata.category(c) in _UNSAFE for c in client_id):
        raise _fail("The token's client id contains control or format characters.", "invalid_client_id")


CLAIM_RULES: tuple[Rule, ...] = (
    *(Rule(f"{name} present", _required(name), "missing_claim") for name in REQUIRED_CLAIMS),
    Rule("exp is a NumericDate", _numeric("exp"), "bad_claim"),
    Rule("iat is a NumericDate", _numeric("iat"), "bad_claim"),
    Rule("exp not passed", _not_expired, "expired"),
    Rule("iat not in the future", _not_issued_in_future, "iat_in_future"),
    Rule("nbf is a NumericDate", _numeric("nbf"), "bad_claim"),
    Rule("nbf reached", _valid_yet, "not_yet_valid"),
    Rule("aud names this API", _audience, "bad_audience"),
    Rule("sub is a non-empty string", _subject, "bad_claim"),
    *(Rule(f"{name} is a string", _string(name), "bad_claim") for name in ("client_id", "azp", "jti")),
    Rule("cnf can be checked", _confirmation, "bad_cnf"),
    Rule("client id is printable", _client_id_printable, "invalid_client_id"),
)


class TokenVerifier:
    """Verifies access tokens for a fixed configuration; one instance per process (see conf.py).

    ``sources`` maps each accepted issuer to its JWKSource. Every request re-checks exp and nbf
    (with ``leeway``); a cache hit skips only the parsing and the signature, and only while the
    signing key is still in the issuer's JWKS. Failures are never cached.
    """

    def __init__(
        self,
        *,
        sources: dict[str, JWKSource],
        audiences: Iterable[str],
        algorithms: Iterable[str] = ("RS256",),
        leeway: float = 0,
        scope_claims: Iterable[str] = DEFAULT_SCOPE_CLAIMS,
        max_token_bytes: int = 8192,
        require_at_jwt: bool = False,
        cache_size: int = 10000,
        clock: Callable[[], float] = time.time,
    ):
        self.sources = dict(sources)
        self.audiences = frozenset(audiences)
        self.algorithms = frozenset(a for a in algorithms if a in SIGNATURE_VERIFIERS)
        self.leeway = float(leeway)
        self.scope_claims = tuple(scope_claims)
        self.max_token_bytes = max_token_bytes
        self.accepted_types = ACCESS_TOKEN_TYPES if require_at_jwt else ACCEPTED_TYPES
        self.cache_size = cache_size
        self.clock = clock
        self.verified = VerifiedTokenCache(cache_size)
        self._cache = self.verified.entries  # the hot path reads the dict itself
        self._scope_memo: dict[tuple, frozenset[str]] = {}

    # --- the per-request entry points --------------------------------------------------------

    def verify(self, raw: str) -> AccessToken:
        return self.verify_principal(raw)[1]

    def verify_principal(self, raw: str) -> tuple[ServiceClient, AccessToken]:
        """(ServiceClient, AccessToken) for a raw JWT, or InvalidToken / KeysUnavailable."""
        if type(raw) is not str:
            raise InvalidToken("The access token is not a string.", reason="malformed")
        if len(raw) > self.max_token_bytes:  # size cap before any parsing or hashing
            raise InvalidToken("The access token is too large.", reason="too_large")
        digest = _sha256(raw.encode("utf-8", "surrogatepass")).digest()
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

        alg, kid = self._check_header(header)
        issuer = claims.get("iss")
        source = self.sources.get(issuer) if type(issuer) is str else None
        if source is None:
            # Checked before the key lookup: iss only picks which allow-listed JWKS to use.
            raise InvalidToken(
                "The token was issued by an issuer this API does not trust.", reason="bad_issuer", claim="iss"
            )
        key = source.get_key(kid, alg)
        try:
            SIGNATURE_VERIFIERS[alg](key.public_key, signature, raw[: len(header_b64) + 1 + len(payload_b64)].encode())
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise InvalidToken("The token signature is invalid.", reason="bad_signature") from exc

        exp, nbf = self._check_claims(claims)
        scopes = self._scopes(claims)
        token = AccessToken(claims, scopes, digest=digest, kid=kid)
        client = ServiceClient.from_token(token)
        self.verified.remember(digest, CacheEntry(token, client, exp, nbf, self.leeway, key, source), self.clock())
        return client, token

    def _check_header(self, header: dict[str, Any]) -> tuple[str, str | None]:
        """Run HEADER_RULES in order; the first failure is raised. Returns (alg, kid)."""
        for rule in HEADER_RULES:
            rule.check(self, header, 0.0)
        return header["alg"], header.get("kid")

    def _check_claims(self, claims: dict[str, Any]) -> tuple[float, float]:
        """Run CLAIM_RULES in order; the first failure is raised. Returns (exp, nbf)."""
        now = self.clock()
        for rule in CLAIM_RULES:
            rule.check(self, claims, now)
        return float(claims["exp"]), float(claims.get("nbf", -math.inf))

    def _scopes(self, claims: dict[str, Any]) -> frozenset[str]:
        # Tokens of one client carry the same scope string: share one frozenset between them
        # (a cached token costs memory, and a cache of 10,000 distinct sets costs cache misses).
        try:
            key = tuple(claims.get(name) for name in self.scope_claims)
            scopes = self._scope_memo.get(key)
        except TypeError:  # an array claim (scp, permissions): not hashable, computed each time
            return scopes_from_claims(claims, self.scope_claims)
        if scopes is None:
            scopes = scopes_from_claims(claims, self.scope_claims)
            if len(self._scope_memo) >= 1024:
                self._scope_memo.clear()
            self._scope_memo[key] = scopes
        return scopes


__all__ = [
    "ACCEPTED_TYPES",
    "ACCESS_TOKEN_TYPES",
    "CLAIM_RULES",
    "HEADER_RULES",
    "REQUIRED_CLAIMS",
    "Rule",
    "TokenVerifier",
]
