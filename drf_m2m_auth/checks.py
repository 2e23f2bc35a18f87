"""System checks for DRF_M2M_AUTH: a bad setting is an error at startup, naming the key."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import ALLOWED_ALGORITHMS, DEFAULTS, SETTINGS_NAME, as_list

P = f"{SETTINGS_NAME}"
NUMBERS = (
    "LEEWAY",
    "MAX_TOKEN_BYTES",
    "HTTP_TIMEOUT",
    "JWKS_MAX_BYTES",
    "JWKS_DEFAULT_TTL",
    "JWKS_MIN_TTL",
    "JWKS_MAX_TTL",
    "JWKS_REFRESH_COOLDOWN",
    "JWKS_STALE_IF_ERROR",
    "JWKS_COLD_RETRY",
    "VERIFIED_TOKEN_CACHE_SIZE",
    "REVOCATION_CHECK_INTERVAL",
)


def _url_problem(url: Any, insecure_hosts: list) -> str | None:
    from .errors import JWKSError
    from .fetch import check_url  # the very rule the fetcher enforces at run time

    if not isinstance(url, str) or not url:
        return "is not a URL string"
    try:
        check_url(url, insecure_hosts)
    except JWKSError as exc:
        return str(exc)
    return None


def _strings(value: Any) -> bool:
    items = as_list(value)
    return bool(items) and all(isinstance(v, str) and v for v in items)


@register(Tags.security, "drf_m2m_auth")
def check_settings(app_configs=None, **kwargs) -> list:
    user = getattr(settings, SETTINGS_NAME, None)
    if user is None:
        return [
            Error(
                f"{P} is not set.",
                hint=f'Set {P} = {{"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "https://api.example.com"}}.',
                id="drf_m2m_auth.E001",
            )
        ]
    if not isinstance(user, dict):
        return [Error(f"{P} must be a dict.", id="drf_m2m_auth.E001")]
    errors: list = []
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        errors.append(
            Error(
                f"{P} has unknown key(s): {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="drf_m2m_auth.E002",
            )
        )
    s = {**DEFAULTS, **user}
    insecure = as_list(s["INSECURE_JWKS_HOSTS"])
    if not _strings(s["ISSUER"]):
        errors.append(
            Error(
                f"{P}['ISSUER'] must be a non-empty string or list of strings.",
                hint="Use the iss value exactly as your tokens carry it, e.g. "
                "'https://tenant.auth0.com/' (Auth0 keeps the trailing slash).",
                id="drf_m2m_auth.E003",
            )
        )
    if not _strings(s["AUDIENCE"]):
        errors.append(
            Error(
                f"{P}['AUDIENCE'] must be a non-empty string or list of strings.",
                hint="Use your API's identifier (Auth0: APIs > your API > Identifier).",
                id="drf_m2m_auth.E004",
            )
        )
    algs = as_list(s["ALGORITHMS"])
    bad = [a for a in algs if a not in ALLOWED_ALGORITHMS]
    if not algs or bad:
        errors.append(
            Error(
                f"{P}['ALGORITHMS'] holds unsupported or symmetric algorithm(s): {bad or 'none given'}.",
                hint="Use asymmetric algorithms only, e.g. ['RS256'] for Auth0 or ['ES256']; "
                "'none' and HS* are refused (RFC 8725 3.1, 3.2).",
                id="drf_m2m_auth.E005",
            )
        )
    errors += _check_urls(s, insecure)
    value = s["REVOCATION_DB_CHECK_INTERVAL"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        errors.append(
            Error(
                f"{P}['REVOCATION_DB_CHECK_INTERVAL'] must be a non-negative number or None (off), not {value!r}.",
                id="drf_m2m_auth.E007",
            )
        )
    for key in NUMBERS:
        value = s[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.append(Error(f"{P}['{key}'] must be a non-negative number, not {value!r}.", id="drf_m2m_auth.E007"))
    if not _strings(s["SCOPE_CLAIMS"]):
        errors.append(Error(f"{P}['SCOPE_CLAIMS'] must be a list of claim names.", id="drf_m2m_auth.E008"))
    if s["CACHE"] is not None and s["CACHE"] not in getattr(settings, "CACHES", {}):
        errors.append(
            Error(f"{P}['CACHE'] names cache alias {s['CACHE']!r}, which is not in CACHES.", id="drf_m2m_auth.E009")
        )
    if s["UNREGISTERED_CLIENTS"] not in ("allow", "deny"):
        errors.append(Error(f"{P}['UNREGISTERED_CLIENTS'] must be 'allow' or 'deny'.", id="drf_m2m_auth.E010"))
    errors += _check_sender_constraints(s)
    return errors


def _check_urls(s: dict, insecure: list) -> list:
    errors = []
    jwks_url = s["JWKS_URL"]
    if jwks_url is None:
        for issuer in as_list(s["ISSUER"]):
            if isinstance(issuer, str) and issuer:
                problem = _url_problem(issuer, insecure)
                if problem:
                    errors.append(
                        Error(
                            f"{P}['ISSUER'] {problem}, so OIDC discovery cannot use it.",
                            hint="Give an https issuer, or set JWKS_URL explicitly.",
                            id="drf_m2m_auth.E006",
                        )
                    )
        return errors
    urls = list(jwks_url.values()) if isinstance(jwks_url, dict) else [jwks_url]
    if isinstance(jwks_url, dict):
        missing = [i for i in as_list(s["ISSUER"]) if i not in jwks_url]
        if missing:
            errors.append(Error(f"{P}['JWKS_URL'] has no URL for issuer(s) {missing}.", id="drf_m2m_auth.E006"))
    for url in urls:
        problem = _url_problem(url, insecure)
        if problem:
            errors.append(
                Error(
                    f"{P}['JWKS_URL'] {problem}.",
                    hint="JWKS must be fetched over https (loopback hosts and INSECURE_JWKS_HOSTS excepted).",
                    id="drf_m2m_auth.E006",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_deploy(app_configs=None, **kwargs) -> list:
    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict):
        return []
    s = {**DEFAULTS, **user}
    warnings = []
    alias = s["CACHE"]
    backend = getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", "") if alias else ""
    if alias is None or backend.endswith(("LocMemCache", "DummyCache")):
        warnings.append(
            Warning(
                f"{P}['CACHE'] is a per-process cache: every worker fetches the JWKS itself and "
                "revocations do not reach other workers.",
                hint="Point CACHE at Redis (django.core.cache.backends.redis.RedisCache) or a "
                "database cache shared by all workers.",
                id="drf_m2m_auth.W001",
            )
        )
    return warnings


def _jwks_transport_urls(s: dict) -> list[tuple[str, str]]:
    """(setting, url) for every URL keys are fetched from: JWKS_URL, or each ISSUER's discovery."""
    jwks_url = s["JWKS_URL"]
    if jwks_url is None:
        return [("ISSUER", i) for i in as_list(s["ISSUER"]) if isinstance(i, str)]
    urls = jwks_url.values() if isinstance(jwks_url, dict) else [jwks_url]
    return [("JWKS_URL", u) for u in urls if isinstance(u, str)]


@register(Tags.security, deploy=True)
def check_deploy_transport(app_configs=None, **kwargs) -> list:
    """Keys fetched over plain http in production: whoever sits on the path can sign any token."""
    from .fetch import is_loopback_host

    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict) or settings.DEBUG:
        return []
    messages: list = []
    for key, url in _jwks_transport_urls({**DEFAULTS, **user}):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            continue
        if is_loopback_host(parts.hostname):
            # A sidecar or node-local proxy on loopback never crosses a network: legitimate, but say so.
            messages.append(
                Warning(
                    f"{P}['{key}'] fetches signing keys over plain http from loopback ({url!r}) with DEBUG off.",
                    hint="Fine for a sidecar that itself fetches over https; otherwise use the issuer's https URL. "
                    "Silence with SILENCED_SYSTEM_CHECKS = ['drf_m2m_auth.W003'].",
                    id="drf_m2m_auth.W003",
                )
            )
        else:
            messages.append(
                Error(
                    f"{P}['{key}'] fetches signing keys over plain http from {parts.hostname!r} with DEBUG off: "
                    "anyone on the network path can substitute keys and forge any token.",
                    hint="Use the issuer's https URL and remove the host from INSECURE_JWKS_HOSTS.",
                    id="drf_m2m_auth.E011",
                )
            )
    return messages


@register(Tags.security, deploy=True)
def check_deploy_leeway(app_configs=None, **kwargs) -> list:
    """LEEWAY 0 in production rejects tokens from an issuer whose clock is a few ms ahead (iat/nbf)."""
    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict):
        return []
    leeway = {**DEFAULTS, **user}["LEEWAY"]
    if isinstance(leeway, (int, float)) and not isinstance(leeway, bool) and leeway == 0:
        return [
            Warning(
                f"{P}['LEEWAY'] is 0: a token minted by an issuer whose clock runs a few milliseconds "
                "ahead of this server has an iat in the future and is rejected (iat_in_future).",
                hint="Set LEEWAY to a few seconds (5 is common); exp is still enforced within it.",
                id="drf_m2m_auth.W002",
            )
        ]
    return []


def _check_sender_constraints(s: dict) -> list:
    """DPoP (RFC 9449) and certificate-bound tokens (RFC 8705): E020-E023, W020."""
    import ipaddress

    out: list = []
    if s["DPOP"] not in ("disabled", "allowed", "required"):
        out.append(
            Error(
                f"{P}['DPOP'] must be 'disabled', 'allowed' or 'required', not {s['DPOP']!r}.", id="drf_m2m_auth.E020"
            )
        )
    algs = as_list(s["DPOP_ALGORITHMS"])
    bad = [a for a in algs if a not in ALLOWED_ALGORITHMS]
    if not algs or bad:
        out.append(
            Error(
                f"{P}['DPOP_ALGORITHMS'] holds unsupported or symmetric algorithm(s): {bad or 'none given'}.",
                hint="RFC 9449 4.2: asymmetric only, e.g. ['ES256', 'PS256'].",
                id="drf_m2m_auth.E021",
            )
        )
    for key in ("DPOP_PROOF_MAX_AGE", "DPOP_CLOCK_SKEW", "DPOP_NONCE_LIFETIME"):
        value = s[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            out.append(Error(f"{P}['{key}'] must be a positive number, not {value!r}.", id="drf_m2m_auth.E022"))
    for address in as_list(s["TRUSTED_PROXIES"]):
        try:
            ipaddress.ip_network(str(address), strict=False)
        except ValueError:
            out.append(
                Error(
                    f"{P}['TRUSTED_PROXIES'] holds {address!r}, which is not an IP address or network.",
                    id="drf_m2m_auth.E023",
                )
            )
    header = s["MTLS_CERT_HEADER"]
    if header is not None and (not isinstance(header, str) or not header.strip() or " " in header):
        out.append(
            Error(f"{P}['MTLS_CERT_HEADER'] must be a header name such as 'X-SSL-Client-Cert'.", id="drf_m2m_auth.E023")
        )
    elif (header or s["DPOP_FORWARDED_HEADERS"]) and not as_list(s["TRUSTED_PROXIES"]):
        out.append(
            Warning(
                f"{P}['TRUSTED_PROXIES'] is empty, so forwarded client certificates and X-Forwarded-* "
                "headers are never believed.",
                hint="List your TLS terminators' addresses.",
                id="drf_m2m_auth.W020",
            )
        )
    return out
