"""System checks for DRF_M2M_AUTH: a bad setting is an error at startup, naming the key."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from . import network_checks  # noqa: F401 -- registers the opt-in drf_m2m_auth_network check
from .conf import DEFAULTS, SETTINGS_NAME, as_list, validate, validate_full

__all__ = ["check_settings", "check_cache", "check_deploy_transport", "check_deploy_leeway"]

P = f"{SETTINGS_NAME}"


@register(Tags.security, "drf_m2m_auth")
def check_settings(app_configs=None, **kwargs) -> list:
    """Every problem the settings loader finds (the same validators), with its id; plus warnings."""
    user = getattr(settings, SETTINGS_NAME, None)
    if user is None:
        return [
            Error(
                f"{P} is not set.",
                hint=f'Set {P} = {{"ISSUER": "https://tenant.auth0.com/", "AUDIENCE": "https://api.example.com"}}.',
                id="drf_m2m_auth.E001",
            )
        ]
    result = validate_full(user, getattr(settings, "CACHES", None) or {}, getattr(settings, "DATABASES", None) or {})
    problems = result.problems
    messages: list = [Error(p.message, hint=p.hint, id=p.check_id) for p in problems]
    if problems:
        messages[0].hint = (messages[0].hint + " " if messages[0].hint else "") + (
            "While any setting is invalid, every request that carries a token is answered 503."
        )
    # Issuer warnings (the deprecated ISSUER list): the configuration works, but say how to move on.
    messages += [
        Warning(
            w.message,
            hint='ISSUERS = [{"issuer": ..., "audience": ..., "jwks_url": ...}, ...], one entry per issuer.',
            id=w.check_id,
        )
        for w in result.warnings
    ]
    return messages + _proxy_warnings(result.values)


def _proxy_warnings(values: dict) -> list:
    out: list = []
    if (values.get("MTLS_CERT_HEADER") or values.get("DPOP_FORWARDED_HEADERS")) and values.get("TRUSTED_PROXIES") == []:
        out.append(
            Warning(
                f"{P}['TRUSTED_PROXIES'] is empty, so forwarded client certificates and X-Forwarded-* "
                "headers are never believed.",
                hint="List your TLS terminators' addresses.",
                id="drf_m2m_auth.W020",
            )
        )
    return out


@register(Tags.caches, "drf_m2m_auth")
def check_cache(app_configs=None, **kwargs) -> list:
    """CACHE that other processes cannot see (LocMem), that stores nothing (Dummy), or None."""
    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict):
        return []
    caches = getattr(settings, "CACHES", None) or {}
    s, _problems = validate(
        user, caches, getattr(settings, "DATABASES", None) or {}
    )  # converted values; an invalid key is absent (an error already)
    if "CACHE" not in s:
        return []
    alias = s["CACHE"]
    config = caches.get(alias) if alias is not None else None
    backend = str((config or {}).get("BACKEND", ""))
    db_interval = s.get("REVOCATION_DB_CHECK_INTERVAL", DEFAULTS["REVOCATION_DB_CHECK_INTERVAL"])
    interval = s.get("REVOCATION_CHECK_INTERVAL", DEFAULTS["REVOCATION_CHECK_INTERVAL"])
    # Without a generation in a shared cache, each process reads the database's revocation stamps
    # at every REVOCATION_CHECK_INTERVAL (CACHE None, or a DummyCache, which never keeps one).
    polled = (
        f"revocations reach other worker processes within REVOCATION_CHECK_INTERVAL ({interval:g} s) only "
        "because every process queries the database at each interval"
    )
    if alias is None:
        kind, revocations, extra = "is None", polled, "; every process fetches the JWKS itself"
    elif backend.endswith("DummyCache"):
        kind, revocations = f"names {alias!r}, a DummyCache, which stores nothing", polled
        extra = (
            "; nothing is shared or stored: every process fetches the JWKS itself, and DPoP replay "
            "claims fall back to each process's own memory"
        )
    elif backend.endswith("LocMemCache"):
        kind, extra = f"names {alias!r}, a LocMemCache, which each process keeps to itself", ""
        if db_interval:
            revocations = (
                "a revocation made in one process reaches other worker processes only at their next database "
                f"check, up to REVOCATION_DB_CHECK_INTERVAL ({db_interval:g} s) later"
            )
        else:
            revocations = (
                "a revocation made in one process never reaches other worker processes (until they restart), "
                "since REVOCATION_DB_CHECK_INTERVAL is off"
            )
    else:
        return []
    return [
        Warning(
            f"{P}['CACHE'] {kind}: {revocations}; DPoP replay protection is per process (a proof replayed to "
            f"another worker is accepted within its DPOP_PROOF_MAX_AGE){extra}.",
            hint="Point CACHE at a cache every process shares: Redis "
            "(django.core.cache.backends.redis.RedisCache), or for a laptop FileBasedCache.",
            id="drf_m2m_auth.W001",
        )
    ]


def _jwks_transport_urls(s: dict) -> list[tuple[str, str]]:
    """(setting, url) for every URL keys are fetched from: JWKS_URL, or each issuer's discovery.

    One per trusted issuer: an ISSUERS entry's jwks_url, else its issuer (OIDC discovery).
    """
    entries = s.get("ISSUERS")
    if isinstance(entries, (list, tuple)):
        out = []
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                key = "jwks_url" if entry.get("jwks_url") is not None else "issuer"
                if isinstance(entry.get(key), str):
                    out.append((f"ISSUERS'][{i}]['{key}", entry[key]))
        return out
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
