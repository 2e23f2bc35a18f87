"""DPoP (RFC 9449): proof checking for resource servers. Pure: no Django. (Proofs are made by dpop_key.DPoPKey.)"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from .dpop_htu import normalize_htu
from .dpop_state import MemoryReplayCache, NonceSource
from .errors import InvalidDPoPProof, InvalidToken, ReplayCheckUnavailable, UseDPoPNonce
from .jose import (
    ALG_KEY_TYPES,
    SIGNATURE_VERIFIERS,
    b64url_decode,
    b64url_encode,
    is_numeric_date,
    json_object,
    jwk_to_public_key,
)
from .jose import (
    thumbprint as rfc7638_thumbprint,
)

logger = logging.getLogger("drf_m2m_auth.dpop")

PROOF_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})  # media types compare case-insensitively
DEFAULT_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})  # RFC 7518 6.2.2, 6.3.2, 6.4
MAX_PROOF_BYTES = 8192
CACHE_DOWN_MODES = ("local", "reject")  # DPOP_REPLAY_CACHE_DOWN
MAX_JTI_LENGTH = 256  # RFC 9449 11.1: refuse needlessly large jti values (they are stored)


def access_token_hash(access_token: str) -> str:
    """RFC 9449 4.2 ``ath``: base64url(SHA-256(ASCII access token))."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest())


def _suits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Does ``jwk`` have the key type (and curve) ``alg`` needs? Any JSON type may arrive: only
    strings are looked up (a list or object as ``crv`` is unhashable: no ``in`` on a set)."""
    kty, curves = ALG_KEY_TYPES[alg]
    crv = jwk.get("crv")
    if type(jwk.get("kty")) is not str or jwk["kty"] != kty:
        return False
    return curves is None or (type(crv) is str and crv in curves)


# --- server nonces (RFC 9449 8, 9) ---------------------------------------------------------------


# --- checking proofs ---------------------------------------------------------------------------


class VerifiedProof:
    __slots__ = ("iat", "jkt", "jti", "nonce_age")

    def __init__(self, jkt: str, jti: str, iat: float, nonce_age: float | None):
        self.jkt, self.jti, self.iat, self.nonce_age = jkt, jti, iat, nonce_age

    def __repr__(self) -> str:
        return f"<VerifiedProof jkt={self.jkt!r}>"


def _fail(description: str, reason: str, claim: str | None = None) -> InvalidDPoPProof:
    return InvalidDPoPProof(description, reason=reason, claim=claim)


class DPoPVerifier:
    """Checks a DPoP proof exactly as RFC 9449 section 4.3 lists, numbered (1)..(12) below.

    ``replay_cache``: the fleet's shared cache as an object with ``key(kind, *parts)``,
    ``claim(key, timeout)`` (True once across every process, None when the cache is unreachable)
    and ``stores`` (False for a cache that keeps nothing) -- a ``drf_m2m_auth.shared.SharedCache``;
    None for this process only. A jti accepted by one worker is then refused by all. Without a
    cache that stores, and while the shared cache is unreachable with ``cache_down="local"``, the
    in-process ``MemoryReplayCache`` answers (a replay to the same worker is still refused);
    ``cache_down="reject"`` answers 503 instead while the shared cache is unreachable.
    ``nonces``: a NonceSource when the server requires nonces. A proof is accepted when
    ``now - max_age - clock_skew <= iat <= now + clock_skew``. ``max_proofs_per_second`` sizes
    the in-process store (its capacity is that rate times the replay window).
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        max_age: float = 60,
        clock_skew: float = 5,
        replay_cache: Any = None,
        cache_down: str = "local",
        nonces: NonceSource | None = None,
        clock: Callable[[], float] = time.time,
        key_cache_size: int = 1024,
        max_proofs_per_second: int = 2000,
    ):
        if cache_down not in CACHE_DOWN_MODES:
            raise ValueError(f"cache_down must be one of {CACHE_DOWN_MODES}, not {cache_down!r}")
        ordered = list(dict.fromkeys(a for a in algorithms if a in SIGNATURE_VERIFIERS))
        self.algorithms = frozenset(ordered)
        self.algs_header = " ".join(ordered)  # RFC 9449 7.1 algs, in the configured order
        self.max_age, self.clock_skew = float(max_age), float(clock_skew)
        self.nonces = nonces
        self.clock = clock
        window = self.max_age + 2 * self.clock_skew
        if nonces is not None:
            window = max(window, nonces.lifetime + self.clock_skew)
        self.replay_ttl = int(window) + 1
        # A cache that stores nothing (DummyCache) would accept every replay: use process memory.
        self.replay_cache = replay_cache if replay_cache is not None and getattr(replay_cache, "stores", True) else None
        self.cache_down = cache_down
        self.local_replays = MemoryReplayCache(max_entries=max(1000, max_proofs_per_second * self.replay_ttl))
        self._keys: dict[str, Any] = {}
        self._key_cache_size = key_cache_size

    def verify(
        self, proof: Any, *, method: str, url: str, access_token: str | None = None, jkt: str | None = None
    ) -> VerifiedProof:
        """Check ``proof`` (the DPoP header's value, None if absent) for this request.

        ``url`` is the request's target URI as the server sees it; ``access_token`` and ``jkt``
        (the token's ``cnf.jkt``) when the proof accompanies an access token (4.3 (12)).
        """
        if proof is None or proof == "":
            raise _fail("The request has no DPoP proof.", "dpop_missing")
        # (1) one DPoP field: servers join repeated fields with "," (RFC 9110 5.3), never in a JWS.
        if type(proof) is not str or "," in proof:
            raise _fail("The request has more than one DPoP header.", "dpop_multiple_headers")
        header, claims, signing_input, signature = self._parse(proof)  # (2)
        alg, public_key, thumbprint = self._check_header(header)  # (4), (5), (7)
        try:  # (6)
            SIGNATURE_VERIFIERS[alg](public_key, signature, signing_input)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise _fail("The DPoP proof signature is invalid.", "dpop_bad_signature") from exc
        jti, iat = self._check_required(claims, access_token is not None)  # (3)
        if claims["htm"] != method:  # (8) methods are case-sensitive (RFC 9110 9.1)
            raise _fail("The DPoP proof is for another HTTP method (htm).", "dpop_htm_mismatch", "htm")
        expected = normalize_htu(url)
        if expected is None or normalize_htu(claims["htu"]) != expected:  # (9) query, fragment ignored
            raise _fail("The DPoP proof is for another URL (htu).", "dpop_htu_mismatch", "htu")
        nonce_age = self._check_time(claims, iat)  # (10), (11)
        if access_token is not None:  # (12)
            # compare_digest on str raises for non-ASCII text: compare the UTF-8 bytes instead.
            if not hmac.compare_digest(claims["ath"].encode(), access_token_hash(access_token).encode()):
                raise _fail("The DPoP proof is for another access token (ath).", "dpop_ath_mismatch", "ath")
            if type(jkt) is not str or not hmac.compare_digest(thumbprint.encode(), jkt.encode()):
                # RFC 9449 7.1 figure 16: a key that is not the token's is an invalid_token.
                raise InvalidToken(
                    "Invalid DPoP key binding: the proof's key is not the token's (cnf.jkt).",
                    reason="dpop_key_mismatch",
                    claim="cnf",
                )
        # RFC 9449 11.1: each proof once. Claimed last, so a proof failing a check burns nothing.
        if self._claim(thumbprint, jti) is False:
            raise _fail("The DPoP proof has been used before (jti).", "dpop_replayed", "jti")
        return VerifiedProof(thumbprint, jti, iat, nonce_age)

    def _claim(self, thumbprint: str, jti: str) -> bool:
        """True the first time this (key, jti) is seen within the replay window (RFC 9449 11.1)."""
        shared = self.replay_cache
        if shared is not None:
            won = shared.claim(shared.key("dpop-jti", thumbprint, jti), self.replay_ttl)
            if won is not None:
                return bool(won)
            if self.cache_down == "reject":
                raise ReplayCheckUnavailable(
                    "The DPoP replay check is unavailable (shared cache unreachable); retry shortly.", retry_after=5
                )
        local = self.local_replays
        won = local.add(hashlib.sha256(f"{thumbprint}\x00{jti}".encode()).hexdigest(), 1, self.replay_ttl)
        if won is None:
            logger.warning(
                "the in-process DPoP replay store is full (%d proofs): refusing until one expires", len(local)
            )
            raise ReplayCheckUnavailable(
                "Too many DPoP proofs to check for replay; retry shortly.", retry_after=local.retry_after()
            )
        return won

    def _parse(self, proof: str) -> tuple[dict, dict, bytes, bytes]:
        if len(proof) > MAX_PROOF_BYTES or not proof.isascii():
            raise _fail("The DPoP proof is not a well-formed JWT.", "dpop_malformed")
        segments = proof.split(".")
        if len(segments) != 3:
            raise _fail("The DPoP proof is not a single well-formed JWT (three segments).", "dpop_malformed")
        try:
            header = json_object(b64url_decode(segments[0]))
            claims = json_object(b64url_decode(segments[1]))
            signature = b64url_decode(segments[2])
        except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
            raise _fail("The DPoP proof is not a well-formed JWT.", "dpop_malformed") from exc
        return header, claims, f"{segments[0]}.{segments[1]}".encode(), signature

    def _check_header(self, header: dict) -> tuple[str, Any, str]:
        typ = header.get("typ")
        if type(typ) is not str or typ.lower() not in PROOF_TYPES:  # (4)
            raise _fail("The DPoP proof's typ is not dpop+jwt.", "dpop_bad_typ", "typ")
        alg = header.get("alg")
        if type(alg) is not str or alg not in self.algorithms:  # (5) an allow-list; never none or HS*
            raise _fail("The DPoP proof's algorithm is not allowed.", "dpop_alg_not_allowed", "alg")
        if "crit" in header:
            raise _fail("The DPoP proof has critical header parameters.", "dpop_crit_unsupported", "crit")
        jwk = header.get("jwk")
        if type(jwk) is not dict:
            raise _fail("The DPoP proof has no jwk header.", "dpop_missing_jwk", "jwk")
        if not PRIVATE_MEMBERS.isdisjoint(jwk):  # (7)
            raise _fail("The DPoP proof's jwk contains a private key.", "dpop_private_jwk", "jwk")
        if not _suits(jwk, alg):
            raise _fail("The DPoP proof's jwk does not suit its alg.", "dpop_bad_jwk", "jwk")
        try:
            # The thumbprint covers kty, crv and the key itself: a cached key is this very key.
            thumbprint = rfc7638_thumbprint(jwk)
            public_key = self._keys.get(thumbprint)
            if public_key is None:
                public_key = jwk_to_public_key(jwk, alg)
                if len(self._keys) >= self._key_cache_size:
                    self._keys.clear()
                self._keys[thumbprint] = public_key
        except (KeyError, ValueError, TypeError) as exc:
            raise _fail("The DPoP proof's jwk is not a usable public key.", "dpop_bad_jwk", "jwk") from exc
        return alg, public_key, thumbprint

    def _check_required(self, claims: dict, with_token: bool) -> tuple[str, float]:
        required = ("jti", "htm", "htu", "iat") + (("ath",) if with_token else ())  # RFC 9449 4.2
        for name in required:
            if name not in claims:
                raise _fail(f"The DPoP proof has no {name} claim.", "dpop_missing_claim", name)
        for name in ("jti", "htm", "htu") + (("ath",) if with_token else ()):
            if type(claims[name]) is not str or not claims[name]:
                raise _fail(f"The DPoP proof's {name} is not a string.", "dpop_bad_claim", name)
        if len(claims["jti"]) > MAX_JTI_LENGTH:
            raise _fail("The DPoP proof's jti is too long.", "dpop_bad_claim", "jti")
        iat = claims["iat"]
        if not is_numeric_date(iat):
            raise _fail("The DPoP proof's iat is not a NumericDate.", "dpop_bad_claim", "iat")
        return claims["jti"], float(iat)

    def _check_time(self, claims: dict, iat: float) -> float | None:
        if self.nonces is not None:  # (10) we provide nonces, so the proof must carry a current one
            nonce = claims.get("nonce")
            age = self.nonces.age(nonce)
            if age is None:
                what = "no nonce" if nonce is None else "a stale or unknown nonce"
                raise UseDPoPNonce(
                    f"The DPoP proof has {what}: use the DPoP-Nonce this server sent.", nonce=self.nonces.issue()
                )
            # (11) the nonce is a server-managed timestamp: the proof was made after it was issued.
            return age
        now = self.clock()
        if iat > now + self.clock_skew:  # (11)
            raise _fail(
                "The DPoP proof was issued in the future (iat; check the client's clock).", "dpop_iat_in_future", "iat"
            )
        if iat < now - self.max_age - self.clock_skew:
            raise _fail("The DPoP proof is too old (iat).", "dpop_iat_too_old", "iat")
        return None


__all__ = [
    "DPoPVerifier",
    "MemoryReplayCache",
    "NonceSource",
    "VerifiedProof",
    "access_token_hash",
]
