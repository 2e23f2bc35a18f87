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

from cryptography.hazmat.primitives.asymmetric import ec

from .dpop import access_token_hash
from .jose import b64url_encode, public_jwk, sign, thumbprint

__all__ = ["DPoPKey", "htu_of"]


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
        if not (hasattr(private_key, "sign") and hasattr(private_key, "public_key")):
            raise TypeError(f"a DPoP key must be a private key, not {type(private_key).__name__}")
        self._private_key = private_key
        try:
            alg, jwk = public_jwk(private_key)  # the one JWK encoder (jose), shared with the test issuer
        except TypeError:
            raise TypeError(f"unsupported DPoP key type {type(private_key).__name__}") from None
        if jwk.get("crv") == "Ed448":
            raise TypeError("unsupported DPoP key type: Ed448 (use Ed25519, EC P-256/384/521 or RSA)")
        self.alg = "PS256" if alg == "RS256" else alg  # an RSA key signs its proofs with PSS
        self.jwk = jwk
        self.thumbprint = thumbprint(self.jwk)

    def __repr__(self) -> str:
        return f"<DPoPKey {self.alg} jkt={self.thumbprint!r}>"

    def _sign(self, data: bytes) -> bytes:
        return sign(self._private_key, self.alg, data)

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
