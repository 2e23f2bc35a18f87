"""Verification keys: a JWKS document parsed into a KeySet. Pure: no Django.

A key that cannot or must not be used is skipped, never the whole set: whatever JSON type any
member has (string, number, bool, null, array, object), parsing never raises for one bad key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import JWKSError
from .jose import ALG_KEY_TYPES, jwk_to_public_key, thumbprint

__all__ = ["KeySet", "VerifyKey", "describe_keys", "parse_jwks"]

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


def _str_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _key_algorithms(jwk: Mapping[str, Any], algorithms: Iterable[str]) -> frozenset[str]:
    """The allowed algorithms this JWK may verify; empty for any member of the wrong JSON type."""
    kty, crv, declared = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    if type(kty) is not str or not _str_or_none(crv) or not _str_or_none(declared):
        return frozenset()
    fits = set()
    for alg in algorithms:
        spec = ALG_KEY_TYPES.get(alg)
        if spec is None or spec[0] != kty or (spec[1] is not None and crv not in spec[1]):
            continue
        if declared is not None and declared != alg and not (declared == "EdDSA" and alg == "Ed25519"):
            continue
        fits.add(alg)
    return frozenset(fits)


def _usable_for_signatures(jwk: dict[str, Any]) -> bool:
    use = jwk.get("use")
    if use is not None and use != "sig":  # RFC 7517 4.2 (any other value or JSON type: not ours)
        return False
    ops = jwk.get("key_ops")
    if ops is not None and (type(ops) is not list or "verify" not in ops):  # RFC 7517 4.3
        return False
    return _str_or_none(jwk.get("kid"))


def parse_jwks(doc: Any, algorithms: Iterable[str]) -> KeySet:
    """Parse a JWKS document, skipping (not failing on) keys that cannot or must not be used.

    Skipped: ``use`` other than ``sig``; ``key_ops`` without ``verify``; a ``kid`` that is not a
    string; a ``kty``/``crv``/``alg`` that fits none of the allowed algorithms (so an ``oct`` key
    can never verify anything: no HS256-with-public-key confusion); RSA keys under 2048 bits; key
    material that is not a valid public key. JWKSError only when there is no ``keys`` array.
    """
    if type(doc) is not dict or type(doc.get("keys")) is not list:
        raise JWKSError("JWKS document has no 'keys' array")
    algorithms = tuple(algorithms)
    keyset = KeySet()
    for jwk in doc["keys"]:
        if type(jwk) is not dict or not _usable_for_signatures(jwk):
            continue
        usable = _key_algorithms(jwk, algorithms)
        if not usable:
            continue
        kid = jwk.get("kid")
        try:
            native = jwk_to_public_key(jwk, min(usable))
            print_ = thumbprint(jwk)
        except Exception as exc:  # noqa: BLE001 -- a bad key is skipped, not the whole set
            logger.warning("Skipping unusable JWK kid=%r: %s", kid, type(exc).__name__)
            continue
        vk = VerifyKey(
            kid=kid,
            kty=jwk["kty"],
            crv=jwk.get("crv"),
            alg=jwk.get("alg"),
            algorithms=usable,
            public_key=native,
            thumbprint=print_,
            use=jwk.get("use"),
        )
        keyset.all.append(vk)
        if kid is not None:
            keyset.by_kid.setdefault(kid, []).append(vk)
    keyset.fingerprint = "|".join(
        sorted(f"{k.kid}:{k.thumbprint}:{','.join(sorted(k.algorithms))}" for k in keyset.all)
    )
    return keyset


def describe_keys(doc: Any, limit: int = 10) -> str:
    """What a JWKS offers, for a log line: "RS256/RSA, EC/P-256" ("none" for an empty set)."""
    keys = doc.get("keys") if type(doc) is dict else None
    if type(keys) is not list or not keys:
        return "none"
    seen: list[str] = []
    for jwk in keys:
        if type(jwk) is not dict:
            label = "non-object"
        else:
            parts = [jwk.get("alg"), jwk.get("kty"), jwk.get("crv")]
            label = "/".join(p if type(p) is str else "?" for p in parts if p is not None) or "?"
        if label not in seen:
            seen.append(label[:40])
        if len(seen) >= limit:
            break
    return ", ".join(seen)
