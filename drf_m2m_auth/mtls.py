"""Certificate-bound access tokens (RFC 8705 section 3) behind a TLS terminator. Pure: no Django.

The TLS terminator (nginx, Envoy, an ALB) verifies the client certificate during the handshake
and forwards it in a request header; that header is believed only when the request comes from
one of the configured proxy addresses, since anyone else could simply send it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from .errors import InvalidToken

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
MAX_CERT_HEADER_BYTES = 16384


class TrustedProxies:
    """IP addresses and networks of the proxies whose forwarded headers are believed."""

    def __init__(self, addresses: Iterable[str] = ()):
        self.networks = tuple(ipaddress.ip_network(str(a), strict=False) for a in addresses)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, remote_addr: Any) -> bool:
        if not self.networks or type(remote_addr) is not str:
            return False
        try:
            address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1, as dual-stack sockets say it
        return any(a in network for a in (address, mapped) if a is not None for network in self.networks)


def certificate_der(value: Any) -> bytes | None:
    """The DER bytes of a forwarded client certificate, or None when there is none.

    Accepts nginx's ``$ssl_client_escaped_cert`` and AWS ALB's URL-encoded PEM, a PEM whose
    newlines a proxy replaced by spaces (Apache, older nginx ``$ssl_client_cert``), and
    base64 DER without PEM armour (Traefik). Only the first certificate counts: the client's own.
    """
    if type(value) is not str or not value.strip() or value.strip() == "-" or len(value) > MAX_CERT_HEADER_BYTES:
        return None
    text = unquote(value) if "%" in value else value
    match = _PEM.search(text)
    body = match.group(1) if match else text
    body = "".join(body.split())
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        return None
    # A DER certificate is a SEQUENCE: anything else is not a certificate.
    return der if len(der) > 64 and der[0] == 0x30 else None


def certificate_thumbprint(der: bytes) -> str:
    """RFC 8705 3.1 ``x5t#S256``: base64url(SHA-256(DER)), no padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def check_certificate_binding(expected: str, forwarded_value: Any, *, trusted: bool) -> None:
    """RFC 8705 3: the presented certificate must be the token's, else 401 invalid_token."""
    der = certificate_der(forwarded_value) if trusted else None
    if der is None:
        raise InvalidToken(
            "The token is bound to a client certificate, and none was presented (mutual TLS).",
            reason="mtls_no_certificate",
            claim="cnf",
        )
    # bytes: any text compares; a binding that is not a string (any JSON type may arrive) binds nothing.
    if type(expected) is not str or not hmac.compare_digest(certificate_thumbprint(der).encode(), expected.encode()):
        raise InvalidToken(
            "The token is bound to another client certificate (cnf x5t#S256).",
            reason="mtls_certificate_mismatch",
            claim="cnf",
        )


__all__ = ["TrustedProxies", "certificate_der", "certificate_thumbprint", "check_certificate_binding"]
