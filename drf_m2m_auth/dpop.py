"""DPoP (RFC 9449): proof checking for resource servers, proof making for clients. Pure: no Django."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from .jose import ALG_KEY_TYPES, MIN_RSA_BITS, SIGNATURE_VERIFIERS, b64url_decode
from .jose import json_object as _json_object

logger = logging.getLogger("drf_m2m_auth.dpop")

PROOF_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})  # media types compare case-insensitively
DEFAULT_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})  # RFC 7518 6.2.2, 6.3.2, 6.4
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
MAX_PROOF_BYTES = 8192
MAX_JTI_LENGTH = 256  # RFC 9449 11.1: refuse needlessly large jti values (they are stored)
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}
_OKP: dict[str, tuple[Any, int]] = {"Ed25519": (ed25519.Ed25519PublicKey, 32), "Ed448": (ed448.Ed448PublicKey, 57)}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """RFC 9449 4.2 ``ath``: base64url(SHA-256(ASCII access token))."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint: the required members only, sorted, no whitespace."""
    members = THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _int(value: Any, size: int | None = None) -> int:
    raw = b64url_decode(value) if type(value) is str else b""
    if not raw or (size is not None and len(raw) != size):
        raise ValueError("bad key member")
    return int.from_bytes(raw, "big")


def public_key_from_jwk(jwk: Mapping[str, Any], alg: str) -> Any:
    """A cryptography public key for a proof's ``jwk``, which must suit ``alg``; ValueError if not."""
    kty, curves = ALG_KEY_TYPES[alg]
    if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
        raise ValueError("the key does not suit the algorithm")
    if kty == "EC":
        curve, size = _CURVES[jwk["crv"]]
        # from_public_numbers refuses points that are not on the curve (invalid-curve attacks)
        return ec.EllipticCurvePublicNumbers(_int(jwk.get("x"), size), _int(jwk.get("y"), size), curve()).public_key()
    if kty == "RSA":
        n = _int(jwk.get("n"))
        if n.bit_length() < MIN_RSA_BITS:
            raise ValueError("RSA key too short")
        return rsa.RSAPublicNumbers(_int(jwk.get("e")), n).public_key()
    cls, size = _OKP[jwk["crv"]]
    x = b64url_decode(jwk["x"]) if type(jwk.get("x")) is str else b""
    if len(x) != size:
        raise ValueError("bad OKP key")
    return cls.from_public_bytes(x)


# --- htu: RFC 9449 4.3 (9) with RFC 3986 6.2.2 / 6.2.3 normalisation ------------------------------


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _normalise_percent(path: str) -> str:
    # RFC 3986 6.2.2.1 / 6.2.2.2: hex digits upper case, unreserved characters decoded.
    def fix(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, path)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4 (6.2.2.3)
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/".join(output)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


def normalize_htu(url: Any) -> str | None:
    """scheme://host[:port]/path, normalised; query and fragment dropped; None if not an http(s) URL."""
    if type(url) is not str or not url.isascii() or any(c in url for c in " \t\r\n\\"):
        return None
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{_remove_dot_segments(_normalise_percent(parts.path or '/'))}"


# --- server nonces (RFC 9449 8, 9) ---------------------------------------------------------------


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
        return b64url(body + hmac.new(self._secret, body, hashlib.sha256).digest()[:16])

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


# --- the replay cache: one atomic claim per jti ---------------------------------------------------


class MemoryReplayCache:
    """Per-process jti store, for when no shared cache is configured (replays reach other workers)."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self.max_entries, self.clock = max_entries, clock

    def add(self, key: str, value: Any, timeout: float) -> bool:
        now = self.clock()
        with self._lock:
            if self._seen.get(key, 0.0) > now:
                return False
            if len(self._seen) >= self.max_entries:
                expired = [k for k, until in self._seen.items() if until <= now]
                for k in expired or list(self._seen)[: len(self._seen) // 10]:  # else the oldest tenth
                    del self._seen[k]
            self._seen[key] = now + timeout
            return True


def _file_cache_add(cache: Any, key: str, ttl: int) -> bool:
    """An atomic add() for Django's FileBasedCache, whose own add() is check-then-set.

    The entry is written to a temporary file in the cache directory, in the cache's own format,
    and hard-linked to the entry's name: link() fails if the name exists, so exactly one process
    wins, whatever the interleaving. An expired entry is removed by has_key() and retried once.
    """
    fname = cache._key_to_file(key)
    cache._createdir()
    fd, tmp = tempfile.mkstemp(dir=cache._dir)
    try:
        with open(fd, "wb") as f:
            cache._write_content(f, ttl, 1)
        for _ in range(2):
            try:
                os.link(tmp, fname)
                return True
            except FileExistsError:
                if cache.has_key(key):  # also deletes the file when it has expired
                    return False
        return False
    finally:
        os.remove(tmp)


def claim_once(cache: Any, key: str, ttl: int) -> bool | None:
    """True for the first claim of ``key`` within ``ttl`` across every process sharing ``cache``.

    None when the cache failed (the caller decides what that means).
    """
    try:
        if hasattr(cache, "_key_to_file") and hasattr(cache, "_write_content"):
            return _file_cache_add(cache, key, ttl)
        return bool(cache.add(key, 1, ttl))
    except Exception as exc:  # noqa: BLE001 -- any backend error: Redis down, disk full
        logger.warning("DPoP replay cache failed (%s); the iat window alone bounds replay", type(exc).__name__)
        return None


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

    ``replay_cache``: anything with Django's ``add(key, value, timeout)``, shared by every worker
    (a jti accepted by one is refused by all). ``nonces``: a NonceSource when the server requires
    nonces. A proof is accepted when ``now - max_age - clock_skew <= iat <= now + clock_skew``.
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        max_age: float = 60,
        clock_skew: float = 5,
        replay_cache: Any = None,
        nonces: NonceSource | None = None,
        clock: Callable[[], float] = time.time,
        key_cache_size: int = 1024,
    ):
        ordered = list(dict.fromkeys(a for a in algorithms if a in SIGNATURE_VERIFIERS))
        self.algorithms = frozenset(ordered)
        self.algs_header = " ".join(ordered)  # RFC 9449 7.1 algs, in the configured order
        self.max_age, self.clock_skew = float(max_age), float(clock_skew)
        self.replay_cache = replay_cache if replay_cache is not None else MemoryReplayCache()
        self.nonces = nonces
        self.clock = clock
        window = self.max_age + 2 * self.clock_skew
        if nonces is not None:
            window = max(window, nonces.lifetime + self.clock_skew)
        self.replay_ttl = int(window) + 1
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
            if jkt is None or not hmac.compare_digest(thumbprint.encode(), jkt.encode()):
                # RFC 9449 7.1 figure 16: a key that is not the token's is an invalid_token.
                raise InvalidToken(
                    "Invalid DPoP key binding: the proof's key is not the token's (cnf.jkt).",
                    reason="dpop_key_mismatch",
                    claim="cnf",
                )
        # RFC 9449 11.1: each proof once. Claimed last, so a proof failing a check burns nothing.
        key = "drf_m2m_auth:dpop:jti:" + hashlib.sha256(f"{thumbprint}\x00{jti}".encode()).hexdigest()
        if claim_once(self.replay_cache, key, self.replay_ttl) is False:
            raise _fail("The DPoP proof has been used before (jti).", "dpop_replayed", "jti")
        return VerifiedProof(thumbprint, jti, iat, nonce_age)

    def _parse(self, proof: str) -> tuple[dict, dict, bytes, bytes]:
        if len(proof) > MAX_PROOF_BYTES or not proof.isascii():
            raise _fail("The DPoP proof is not a well-formed JWT.", "dpop_malformed")
        segments = proof.split(".")
        if len(segments) != 3:
            raise _fail("The DPoP proof is not a single well-formed JWT (three segments).", "dpop_malformed")
        try:
            header = _json_object(b64url_decode(segments[0]))
            claims = _json_object(b64url_decode(segments[1]))
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
        kty, curves = ALG_KEY_TYPES[alg]
        if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
            raise _fail("The DPoP proof's jwk does not suit its alg.", "dpop_bad_jwk", "jwk")
        try:
            # The thumbprint covers kty, crv and the key itself: a cached key is this very key.
            thumbprint = jwk_thumbprint(jwk)
            public_key = self._keys.get(thumbprint)
            if public_key is None:
                public_key = public_key_from_jwk(jwk, alg)
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
        if type(iat) not in (int, float) or not (0 <= iat < 253402300800):
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


# --- making proofs (the calling side) -----------------------------------------------------------

_SIGN_HASH: dict[str, Any] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_ALGS = {
    "secp256r1": ("ES256", "P-256", 32),
    "secp384r1": ("ES384", "P-384", 48),
    "secp521r1": ("ES512", "P-521", 66),
}


def htu_of(url: str) -> str:
    """The htu for a request URL: the URL without query and fragment (RFC 9449 4.2)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


class DPoPKey:
    """A client's DPoP key pair: ``proof(method, url, access_token=..., nonce=...)`` signs a proof.

    Default: a fresh ES256 (P-256) key, kept in memory only. Pass an existing ``private_key``
    (EC P-256/384/521, RSA >= 2048 bits for PS256, or Ed25519) to share one key between processes.
    """

    def __init__(self, private_key: Any = None):
        if private_key is None:
            private_key = ec.generate_private_key(ec.SECP256R1())
        self._private_key = private_key
        public = private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            self.alg, crv, size = _EC_ALGS[public.curve.name]
            numbers = public.public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": crv,
                "x": b64url(numbers.x.to_bytes(size, "big")),
                "y": b64url(numbers.y.to_bytes(size, "big")),
            }
        elif isinstance(public, rsa.RSAPublicKey):
            rsa_numbers = public.public_numbers()
            n, e = rsa_numbers.n, rsa_numbers.e
            self.alg = "PS256"
            self.jwk = {
                "kty": "RSA",
                "n": b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")),
                "e": b64url(e.to_bytes((e.bit_length() + 7) // 8, "big")),
            }
        elif isinstance(public, ed25519.Ed25519PublicKey):
            self.alg = "EdDSA"
            raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        else:
            raise TypeError(f"unsupported DPoP key type {type(private_key).__name__}")
        self.thumbprint = jwk_thumbprint(self.jwk)

    def __repr__(self) -> str:
        return f"<DPoPKey {self.alg} jkt={self.thumbprint!r}>"

    def _sign(self, data: bytes) -> bytes:
        key, alg = self._private_key, self.alg
        if alg.startswith("ES"):
            size = _EC_ALGS[key.curve.name][2]
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_SIGN_HASH[alg[2:]]())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg == "PS256":
            return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        return key.sign(data)

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
    ) -> str:
        """A fresh proof (new jti) for one request; ``url`` may carry a query, it is dropped."""
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": htu_of(url),
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        return signing_input + "." + b64url(self._sign(signing_input.encode()))


__all__ = [
    "DPoPKey",
    "DPoPVerifier",
    "MemoryReplayCache",
    "NonceSource",
    "VerifiedProof",
    "access_token_hash",
    "claim_once",
    "htu_of",
    "jwk_thumbprint",
    "normalize_htu",
]
