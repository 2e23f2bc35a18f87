"""DPoP (RFC 9449) on the calling side: a client's key pair and the proofs it signs. Pure: no Django.

The proof *checking* of a resource server lives in :mod:`drf_m2m_auth.dpop`; this module is what
:class:`drf_m2m_auth.client.ClientCredentials` uses (imported only when DPoP is switched on).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .dpop import access_token_hash
from .jose import b64url_encode, thumbprint

__all__ = ["DPoPKey", "htu_of"]

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
                "x": b64url_encode(numbers.x.to_bytes(size, "big")),
                "y": b64url_encode(numbers.y.to_bytes(size, "big")),
            }
        elif isinstance(public, rsa.RSAPublicKey):
            rsa_numbers = public.public_numbers()
            n, e = rsa_numbers.n, rsa_numbers.e
            self.alg = "PS256"
            self.jwk = {
                "kty": "RSA",
                "n": b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big")),
                "e": b64url_encode(e.to_bytes((e.bit_length() + 7) // 8, "big")),
            }
        elif isinstance(public, ed25519.Ed25519PublicKey):
            self.alg = "EdDSA"
            raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
        else:
            raise TypeError(f"unsupported DPoP key type {type(private_key).__name__}")
        self.thumbprint = thumbprint(self.jwk)

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
            b64url_encode(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        )
        return signing_input + "." + b64url_encode(self._sign(signing_input.encode()))
