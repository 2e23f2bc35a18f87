"""The sender-constraint policy (DPoP, RFC 9449; certificate binding, RFC 8705) of the current
settings, and the request URL a trusted proxy forwards. DRF glue used by authentication.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .conf import m2m_settings
from .errors import InvalidDPoPProof

__all__ = ["SenderPolicy", "build_dpop_verifier", "forwarded_origin"]


def build_dpop_verifier() -> Any:
    """The DPoPVerifier of the current settings (RFC 9449 proofs, replay claims, nonces)."""
    from django.conf import settings

    from .dpop import DPoPVerifier, NonceSource
    from .shared import get_shared_cache

    s = m2m_settings
    nonces = None
    if s.DPOP_NONCE:
        nonces = NonceSource(str(settings.SECRET_KEY).encode(), s.DPOP_NONCE_LIFETIME)
    shared = get_shared_cache()
    return DPoPVerifier(
        algorithms=s.DPOP_ALGORITHMS,
        max_age=s.DPOP_PROOF_MAX_AGE,
        clock_skew=s.DPOP_CLOCK_SKEW,
        replay_cache=shared,
        cache_down=s.DPOP_REPLAY_CACHE_DOWN,
        nonces=nonces,
    )


@dataclass(frozen=True)
class SenderPolicy:
    """The DPoP / mTLS settings, read once after each settings change."""

    mode: str  # DPOP: "disabled" | "allowed" | "required"
    dpop: Any  # DPoPVerifier
    proxies: Any  # mtls.TrustedProxies
    forwarded: bool  # DPOP_FORWARDED_HEADERS
    cert_key: str | None  # META key of MTLS_CERT_HEADER

    @property
    def accept_dpop(self) -> bool:
        return self.mode != "disabled"

    @property
    def refuse_bearer(self) -> bool:
        return self.mode == "required"

    @property
    def algs(self) -> str:
        return self.dpop.algs_header

    @classmethod
    def from_settings(cls) -> SenderPolicy:
        from .mtls import TrustedProxies

        m2m_settings.ensure_valid()  # ConfigurationInvalid (a 503) rather than a guess
        s = m2m_settings
        header = s.MTLS_CERT_HEADER
        return cls(
            mode=s.DPOP,
            dpop=build_dpop_verifier(),
            proxies=TrustedProxies(s.TRUSTED_PROXIES),
            forwarded=s.DPOP_FORWARDED_HEADERS,
            cert_key="HTTP_" + header.upper().replace("-", "_") if header else None,
        )


def _last(value: str | None) -> str:
    # A proxy appends to X-Forwarded-*; only the right-most value was written by our proxy.
    return value.rsplit(",", 1)[-1].strip() if value else ""


def forwarded_origin(meta: Any) -> str:
    """``proto://host`` from a trusted proxy's X-Forwarded-Proto and X-Forwarded-Host (RFC 9449 htu).

    The proxy contract: it SETS both headers (overwrites, never appends to or passes on what the
    client sent). Both must be present, the scheme http or https, the host one of ALLOWED_HOSTS:
    a missing header or another host would let the client choose the URL its proof names.
    """
    from django.conf import settings
    from django.http.request import split_domain_port, validate_host

    proto, host = _last(meta.get("HTTP_X_FORWARDED_PROTO")).lower(), _last(meta.get("HTTP_X_FORWARDED_HOST"))
    if not proto or not host:
        missing = " and ".join(n for n, v in (("X-Forwarded-Proto", proto), ("X-Forwarded-Host", host)) if not v)
        raise InvalidDPoPProof(
            f"The trusted proxy sent no {missing}: the request URL for the proof's htu is unknown.",
            reason="forwarded_headers_missing",
            claim="htu",
        )
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if proto not in ("http", "https") or not domain or not validate_host(domain, allowed):
        raise InvalidDPoPProof(
            "The trusted proxy's X-Forwarded-Proto or X-Forwarded-Host is not an allowed origin.",
            reason="forwarded_headers_invalid",
            claim="htu",
        )
    return f"{proto}://{host}"
