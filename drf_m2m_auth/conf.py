"""The DRF_M2M_AUTH settings: defaults, validation, and reload on setting_changed."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

SETTINGS_NAME = "DRF_M2M_AUTH"

# Every public key, its default. README's settings table is tested against this dict.
DEFAULTS: dict[str, Any] = {
    "ISSUER": None,
    "AUDIENCE": None,
    "JWKS_URL": None,
    "ALGORITHMS": ["RS256"],
    "LEEWAY": 0,
    "SCOPE_CLAIMS": ["scope", "scp", "permissions"],
    "CACHE": "default",
    "CACHE_KEY_PREFIX": "drf_m2m_auth",
    "REALM": "api",
    "REQUIRE_AT_JWT_TYP": False,
    "MAX_TOKEN_BYTES": 8192,
    "HTTP_TIMEOUT": 5.0,
    "JWKS_MAX_BYTES": 512 * 1024,
    "JWKS_DEFAULT_TTL": 600,
    "JWKS_MIN_TTL": 60,
    "JWKS_MAX_TTL": 86400,
    "JWKS_REFRESH_COOLDOWN": 30,
    "JWKS_STALE_IF_ERROR": 6 * 3600,
    "JWKS_COLD_RETRY": 2,
    "INSECURE_JWKS_HOSTS": [],
    "VERIFIED_TOKEN_CACHE_SIZE": 10000,
    "UNREGISTERED_CLIENTS": "allow",
    "REVOCATION_CHECK_INTERVAL": 1.0,
    "REVOCATION_DB_CHECK_INTERVAL": 60.0,
    # Sender-constrained tokens: DPoP (RFC 9449) and certificate-bound tokens (RFC 8705).
    "DPOP": "allowed",
    "DPOP_ALGORITHMS": ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"],
    "DPOP_PROOF_MAX_AGE": 60,
    "DPOP_CLOCK_SKEW": 5,
    "DPOP_NONCE": False,
    "DPOP_NONCE_LIFETIME": 300,
    "DPOP_REPLAY_CACHE_DOWN": "local",
    "DPOP_FORWARDED_HEADERS": False,
    "TRUSTED_PROXIES": [],
    "MTLS_CERT_HEADER": None,
    # Token Status List (draft-ietf-oauth-status-list-20): revocation that starts at the issuer.
    "STATUS_LIST": "if_present",
    "STATUS_LIST_HOSTS": None,
    "STATUS_LIST_MIN_TTL": 5,
    "STATUS_LIST_MAX_TTL": 3600,
    "STATUS_LIST_MAX_BYTES": 1024 * 1024,
    "STATUS_LIST_MAX_INFLATED_BYTES": 4 * 1024 * 1024,
    "STATUS_LIST_STALE_IF_ERROR": 300,
    "STATUS_LIST_UNAVAILABLE": "reject",
}

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)


def as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


class M2MSettings:
    """Attribute access to DRF_M2M_AUTH with defaults; unknown keys are an error, not ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] | None = None

    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, SETTINGS_NAME, {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict, not {type(value).__name__}")
        return value

    def _load(self) -> dict[str, Any]:
        user = self.user_settings()
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(f"{SETTINGS_NAME} has unknown key(s): {', '.join(unknown)}")
        values = dict(DEFAULTS)
        values.update(user)
        return values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        values = self._values
        if values is None:
            with self._lock:
                if self._values is None:
                    self._values = self._load()
                values = self._values
        return values[name]

    @property
    def issuers(self) -> list[str]:
        return [str(i) for i in as_list(self.ISSUER)]

    @property
    def audiences(self) -> list[str]:
        return [str(a) for a in as_list(self.AUDIENCE)]

    def reload(self) -> None:
        with self._lock:
            self._values = None


m2m_settings = M2MSettings()

_reset_callbacks: list = []


def on_reset(callback):
    """Register a callable run whenever DRF_M2M_AUTH (or CACHES) changes: derived state is cleared."""
    _reset_callbacks.append(callback)
    return callback


def reset_state() -> None:
    m2m_settings.reload()
    for callback in list(_reset_callbacks):
        callback()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "CACHES"):
        reset_state()


setting_changed.connect(_on_setting_changed, dispatch_uid="drf_m2m_auth.conf.setting_changed")


# --- process-wide verifier, built from the settings on first use and rebuilt when they change ----

_verifier = None
_verifier_lock = threading.Lock()


def shared_cache():
    """The Django cache every worker shares (CACHE alias), or None when CACHE is None."""
    alias = m2m_settings.CACHE
    if alias is None:
        return None
    from django.core.cache import caches

    return caches[alias]


def send_jwks_signal(name: str, **details: Any) -> None:
    """JWKSource's on_event -> the jwks_refreshed / jwks_fetch_failed Django signals."""
    from .jwks import JWKSource
    from .signals import JWKS_SIGNALS

    signal = JWKS_SIGNALS.get(name)
    if signal is not None and signal.receivers:
        signal.send_robust(sender=JWKSource, **details)  # one bad receiver must not starve the others


def build_verifier():
    from .jwks import HTTPFetcher, JWKSource
    from .tokens import TokenVerifier

    s = m2m_settings
    fetch = HTTPFetcher(
        timeout=float(s.HTTP_TIMEOUT), max_bytes=int(s.JWKS_MAX_BYTES), insecure_hosts=as_list(s.INSECURE_JWKS_HOSTS)
    )
    cache = shared_cache()
    jwks_url = s.JWKS_URL
    sources = {}
    for issuer in s.issuers:
        url = jwks_url.get(issuer) if isinstance(jwks_url, dict) else jwks_url
        sources[issuer] = JWKSource(
            issuer,
            jwks_url=url,
            algorithms=as_list(s.ALGORITHMS),
            fetch=fetch,
            shared_cache=cache,
            default_ttl=float(s.JWKS_DEFAULT_TTL),
            min_ttl=float(s.JWKS_MIN_TTL),
            max_ttl=float(s.JWKS_MAX_TTL),
            cooldown=float(s.JWKS_REFRESH_COOLDOWN),
            stale_if_error=float(s.JWKS_STALE_IF_ERROR),
            cold_retry=float(s.JWKS_COLD_RETRY),
            lock_wait=float(s.HTTP_TIMEOUT),
            on_event=send_jwks_signal,
        )
    return TokenVerifier(
        sources=sources,
        audiences=s.audiences,
        algorithms=as_list(s.ALGORITHMS),
        leeway=float(s.LEEWAY),
        scope_claims=as_list(s.SCOPE_CLAIMS),
        max_token_bytes=int(s.MAX_TOKEN_BYTES),
        require_at_jwt=bool(s.REQUIRE_AT_JWT_TYP),
        cache_size=int(s.VERIFIED_TOKEN_CACHE_SIZE),
    )


def get_verifier():
    """The process-wide TokenVerifier (JWKS memo and verified-token cache live inside it)."""
    verifier = _verifier
    if verifier is None:
        with _verifier_lock:
            if _verifier is None:
                globals()["_verifier"] = build_verifier()
            verifier = _verifier
    return verifier


@on_reset
def _drop_verifier() -> None:
    globals()["_verifier"] = None
