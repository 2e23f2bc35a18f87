"""The JOSE primitives, once (pure): strict base64url and JSON, NumericDate bounds, alg -> key type,
signature verification, JWK -> public key, RFC 7638 thumbprints, and the signers.

Every module that parses or signs a JWS (tokens, keys, dpop, client, testing, the explainer) uses
these; none keeps its own copy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

__all__ = [
    "ALG_KEY_TYPES",
    "MAX_NUMERIC_DATE",
    "MIN_RSA_BITS",
    "SIGNATURE_VERIFIERS",
    "THUMBPRINT_MEMBERS",
    "b64url_decode",
    "b64url_encode",
    "generate_private_key",
    "is_numeric_date",
    "json_loads",
    "json_object",
    "jwk_to_public_key",
    "public_jwk",
    "sign",
    "thumbprint",
    "verify_signature",
]

# alg -> (kty, allowed curves or None). RFC 7518 3.1 / RFC 8037; HS* and "none" never appear here.
ALG_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
}
MIN_RSA_BITS = 2048  # NIST SP 800-131A
# 9999-12-31T23:59:59Z, inclusive: beyond this a "date" is garbage, not a date (one spelling).
MAX_NUMERIC_DATE = 253402300799
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}

_HASHES: dict[str, hashes.HashAlgorithm] = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}
_CURVES: dict[str, tuple[type[ec.EllipticCurve], int, str]] = {
    "P-256": (ec.SECP256R1, 32, "ES256"),
    "P-384": (ec.SECP384R1, 48, "ES384"),
    "P-521": (ec.SECP521R1, 66, "ES512"),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_OKP: dict[str, tuple[Any, int]] = {"Ed25519": (ed25519.Ed25519PublicKey, 32), "Ed448": (ed448.Ed448PublicKey, 57)}


# --- base64url and JSON --------------------------------------------------------------------------

_URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode_strict(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 2): any other character is an error."""
    # One C pass maps the URL alphabet to the standard one and "+", "/", "=" (not base64url) to
    # "!", which strict mode then refuses; non-ASCII fails the encode (UnicodeEncodeError).
    data = segment.encode("ascii").translate(_URL_TO_STD)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)  # type: ignore[call-arg,unused-ignore]


def _b64url_decode_checked(segment: str) -> bytes:
    """The same for Python 3.10, whose a2b_base64 has no strict mode: check the alphabet first."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    data = segment.encode("ascii")
    return binascii.a2b_base64(data.translate(_URL_TO_STD) + b"=" * (-len(data) % 4))


b64url_decode = _b64url_decode_strict if sys.version_info >= (3, 11) else _b64url_decode_checked


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7515 5.2 / 8725: duplicate members are parsed differently by different libraries.
        raise ValueError("duplicate member name")
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)  # built once


def json_loads(text: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate member names; ValueError otherwise."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    return _JSON.decode(text)


_scan_once = _JSON.scan_once  # type: ignore[attr-defined]  # the decoder's C scanner: JSONDecoder.decode adds two Python frames
_TRAILING_WS = re.compile(r"[ \t\n\r]*")  # JSON's whitespace (RFC 8259 2), as json.decoder's


def json_object(data: bytes) -> dict[str, Any]:
    """A JWS header or payload: UTF-8 (RFC 7519 7.2), strict JSON, and an object."""
    text = data.decode("utf-8")
    if text[:1] != "{":  # leading whitespace, or not an object: the decoder's own path and errors
        value = _JSON.decode(text)
    else:
        # Same scanner, same hooks as _JSON.decode; only the trailing-text rule is restated here.
        # Saves ~0.25 us per segment (two per unseen token).
        try:
            value, end = _scan_once(text, 0)
        except StopIteration:
            raise ValueError("not JSON") from None
        if end != len(text) and _TRAILING_WS.match(text, end).end() != len(text):  # type: ignore[union-attr]
            raise ValueError("extra data after the JSON value")
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value


def is_numeric_date(value: Any) -> bool:
    """RFC 7519 2: a JSON number (not a bool, not NaN/inf) within [0, MAX_NUMERIC_DATE]."""
    return type(value) in (int, float) and 0 <= value <= MAX_NUMERIC_DATE


# --- verification --------------------------------------------------------------------------------


def _verifier_for(alg: str) -> Callable[[Any, bytes, bytes], None]:
    """alg -> a function(public_key, signature, signing_input) raising InvalidSignature."""
    family, bits = alg[:2], alg[2:]
    if family == "RS":
        pad, digest = padding.PKCS1v15(), _HASHES[bits]
        return lambda key, sig, data: key.verify(sig, data, pad, digest)
    if family == "PS":
        digest = _HASHES[bits]
        # RFC 7518 3.5: salt length equals the hash output length; not AUTO, which accepts any.
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return lambda key, sig, data: key.verify(sig, data, pss, digest)
    if family == "ES":
        size, algorithm = _EC_SIZES[alg], ec.ECDSA(_HASHES[bits])

        def verify_ec(key: Any, sig: bytes, data: bytes) -> None:
            # RFC 7518 3.4: R || S, each exactly the curve's size; DER or other lengths are invalid.
            if len(sig) != 2 * size:
                raise InvalidSignature()
            der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
            key.verify(der, data, algorithm)

        return verify_ec
    if alg in ("EdDSA", "Ed25519"):
        return lambda key, sig, data: key.verify(sig, data)
    raise ValueError(f"unsupported algorithm {alg}")


# alg -> function(public_key, signature, signing_input), raising on a bad signature. The hot path
# calls these directly; verify_signature() is the boolean form for everyone else.
SIGNATURE_VERIFIERS = {alg: _verifier_for(alg) for alg in ALG_KEY_TYPES}


def verify_signature(alg: str, key: Any, signing_input: bytes, signature: bytes) -> bool:
    """True only for a valid signature by ``key`` (a cryptography public key) under ``alg``."""
    verifier = SIGNATURE_VERIFIERS.get(alg)
    if verifier is None:
        return False
    try:
        verifier(key, signature, signing_input)
    except (InvalidSignature, ValueError, TypeError, AttributeError):
        return False
    return True


# --- keys ---------------------------------------------------------------------------------------


def _b64_int(value: Any, size: int | None = None) -> int:
    raw = b64url_decode(value) if type(value) is str else b""
    if not raw or (size is not None and len(raw) != size):
        raise ValueError("bad key member")
    return int.from_bytes(raw, "big")


def jwk_to_public_key(jwk: Mapping[str, Any], alg: str) -> Any:
    """A cryptography public key for ``jwk``, which must suit ``alg``; ValueError if it does not."""
    spec = ALG_KEY_TYPES.get(alg) if type(alg) is str else None
    if spec is None:
        raise ValueError("unsupported algorithm")
    kty, curves = spec
    crv = jwk.get("crv")
    if jwk.get("kty") != kty or (curves is not None and (type(crv) is not str or crv not in curves)):
        raise ValueError("the key does not suit the algorithm")
    if kty == "EC":
        curve, size, _ = _CURVES[crv]  # type: ignore[index]
        # from_public_numbers refuses points that are not on the curve (invalid-curve attacks)
        return ec.EllipticCurvePublicNumbers(
            _b64_int(jwk.get("x"), size), _b64_int(jwk.get("y"), size), curve()
        ).public_key()
    if kty == "RSA":
        n = _b64_int(jwk.get("n"))
        if n.bit_length() < MIN_RSA_BITS:
            raise ValueError("RSA key too short")
        return rsa.RSAPublicNumbers(_b64_int(jwk.get("e")), n).public_key()
    cls, size = _OKP[crv]  # type: ignore[index]
    x = b64url_decode(jwk["x"]) if type(jwk.get("x")) is str else b""
    if len(x) != size:
        raise ValueError("bad OKP key")
    return cls.from_public_bytes(x)


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint: the required members only, sorted, no whitespace.

    ValueError for an unknown ``kty`` or a required member that is missing or not a string.
    """
    kty = jwk.get("kty")
    members = THUMBPRINT_MEMBERS.get(kty) if type(kty) is str else None
    if members is None:
        raise ValueError("unsupported kty")
    values = {m: jwk.get(m) for m in members}
    if any(type(v) is not str for v in values.values()):
        raise ValueError("thumbprint members must be strings")
    canonical = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_jwk(key: Any) -> tuple[str, dict[str, str]]:
    """(default alg, public JWK) for a cryptography private or public key (RSA, EC, Ed25519/Ed448)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES.get(public.curve.name)
        if crv is None:
            raise TypeError(f"unsupported curve {public.curve.name}")
        _, size, alg = _CURVES[crv]
        numbers = public.public_numbers()
        return alg, {
            "kty": "EC",
            "crv": crv,
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        n, e = rsa_numbers.n, rsa_numbers.e
        return "RS256", {
            "kty": "RSA",
            "n": b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big")),
            "e": b64url_encode(e.to_bytes((e.bit_length() + 7) // 8, "big")),
        }
    for crv, (cls, _size) in _OKP.items():
        if isinstance(public, cls):
            raw = public.public_bytes_raw()
            return "EdDSA", {"kty": "OKP", "crv": crv, "x": b64url_encode(raw)}
    raise TypeError(f"unsupported key type {type(key).__name__}")


# --- signing (clients' DPoP proofs, the test issuer) -----------------------------------------------


def generate_private_key(alg: str) -> Any:
    """A fresh private key suited to ``alg`` (RSA 2048, the alg's curve, Ed25519; "Ed448" for Ed448)."""
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for curve, _size, curve_alg in _CURVES.values():
        if curve_alg == alg:
            return ec.generate_private_key(curve())
    if alg in ("EdDSA", "Ed25519"):
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "Ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"no key type for {alg}")


def sign(private_key: Any, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature (RFC 7518 encoding: ECDSA as R || S) of ``signing_input`` under ``alg``."""
    family, bits = alg[:2], alg[2:]
    if family == "RS":
        return private_key.sign(signing_input, padding.PKCS1v15(), _HASHES[bits])
    if family == "PS":
        h = _HASHES[bits]
        return private_key.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    if family == "ES":
        size = _EC_SIZES[alg]
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(_HASHES[bits])))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg in ("EdDSA", "Ed25519"):
        return private_key.sign(signing_input)
    raise ValueError(f"unsupported algorithm {alg}")
