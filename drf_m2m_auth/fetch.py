"""URL rules and a bounded HTTP GET for JSON documents (JWKS, OIDC discovery). Pure: no Django."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import JWKSError
from .jose import json_loads

__all__ = [
    "HTTPFetcher",
    "check_url",
    "discover_jwks_uri",
    "discovery_url",
    "is_loopback_host",
    "parse_max_age",
]

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def parse_max_age(cache_control: str | None) -> int | None:
    """Cache-Control max-age in seconds; 0 for no-store; None when absent."""
    if not cache_control or "no-store" in cache_control.lower():
        return None if not cache_control else 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: Any, insecure_hosts: Iterable[str] = ()) -> None:
    """https only, except loopback hosts (sidecars, tests) and hosts explicitly opted in; JWKSError if not."""
    if not isinstance(url, str):
        raise JWKSError("URL is not a string")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError as exc:
        raise JWKSError(f"not a valid URL: {url!r}") from exc
    if parts.scheme not in ("https", "http") or not hostname:
        raise JWKSError(f"not an absolute http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise JWKSError("URL must not carry credentials")
    if parts.scheme == "http" and not (is_loopback_host(hostname) or hostname in set(insecure_hosts)):
        raise JWKSError(f"refusing plain http for non-loopback host {hostname!r} (https required)")


def _redirect_target(url: str, location: str | None) -> str:
    try:
        return urlsplit(urljoin(url, location or "")).hostname or "(none)"
    except ValueError:
        return "(unparseable)"


class HTTPFetcher:
    """GET a JSON document with a total deadline and a size cap; returns (document, max_age).

    Never follows a redirect: a 3xx is a JWKSError naming the status and the target host (the
    keys must come from the URL that was configured or discovered, nowhere else).
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 512 * 1024,
        insecure_hosts: Iterable[str] = (),
        session: Any = None,
    ):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.insecure_hosts = tuple(insecure_hosts)
        self.session = session

    def __call__(self, url: str) -> tuple[Any, int | None]:
        import requests

        check_url(url, self.insecure_hosts)
        getter = self.session or requests
        deadline = time.monotonic() + self.timeout
        try:
            with getter.get(
                url, timeout=self.timeout, stream=True, allow_redirects=False, headers={"Accept": "application/json"}
            ) as resp:
                if resp.status_code in _REDIRECTS or resp.is_redirect:
                    target = _redirect_target(url, resp.headers.get("Location"))
                    raise JWKSError(f"HTTP {resp.status_code} redirect from {url} to host {target!r} (not followed)")
                if resp.status_code != 200:
                    raise JWKSError(f"HTTP {resp.status_code} from {url}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise JWKSError(f"response from {url} larger than {self.max_bytes} bytes")
                body = bytearray()
                for chunk in resp.iter_content(16384):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise JWKSError(f"response from {url} larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise JWKSError(f"timed out reading {url} after {self.timeout} s")
                max_age = parse_max_age(resp.headers.get("Cache-Control"))
        except requests.RequestException as exc:
            raise JWKSError(f"cannot fetch {url}: {type(exc).__name__}") from exc
        try:
            doc = json_loads(bytes(body))
        except (ValueError, RecursionError) as exc:
            raise JWKSError(f"response from {url} is not JSON") from exc
        return doc, max_age


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0 section 4: the issuer with /.well-known/openid-configuration."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def discover_jwks_uri(fetch: Callable[[str], tuple[Any, int | None]], issuer: str) -> str:
    """The jwks_uri from the issuer's discovery document, whose issuer must equal ours exactly (RFC 8414 3.3)."""
    url = discovery_url(issuer)
    doc, _ = fetch(url)
    if type(doc) is not dict:
        raise JWKSError(f"discovery document at {url} is not a JSON object")
    if doc.get("issuer") != issuer:
        raise JWKSError(f"discovery document at {url} names issuer {doc.get('issuer')!r}, expected exactly {issuer!r}")
    jwks_uri = doc.get("jwks_uri")
    if type(jwks_uri) is not str:
        raise JWKSError(f"discovery document at {url} has no jwks_uri")
    return jwks_uri
